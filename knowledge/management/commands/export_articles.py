"""python manage.py export_articles DIR — write every article as DIR/<slug>.md with front matter."""

from django.core.management.base import BaseCommand

from knowledge.files import articles_export


class Command(BaseCommand):
    help = "Export every article (working copy and status) as Markdown with front matter."

    def add_arguments(self, parser):
        parser.add_argument("directory")

    def handle(self, *args, directory, **options):
        written = articles_export(directory)
        self.stdout.write(self.style.SUCCESS(f"{len(written)} articles written to {directory}."))
