"""Reads of the knowledge base for pages and other apps."""

from django.urls import reverse

from knowledge.models import Article


def article_url(slug: str) -> str:
    """Where a person reads an article (the published revision): the link of a citation."""
    return reverse("knowledge-article", args=[slug])


def published_article_get(slug: str) -> Article | None:
    return (
        Article.objects.select_related("published_revision")
        .filter(slug=slug, status=Article.Status.PUBLISHED, published_revision__isnull=False)
        .first()
    )
