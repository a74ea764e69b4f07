from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector from the start: the knowledge base stores its embeddings in it."""

    initial = True
    dependencies: list = []
    operations = [VectorExtension()]
