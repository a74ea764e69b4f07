"""python manage.py import_articles DIR — create or update articles from Markdown files with front matter."""

from django.core.management.base import BaseCommand, CommandError

from knowledge.files import ImportFailed, articles_import
from knowledge.management.progress import jobs_run_with_progress
from knowledge.services import indexing_collected


class Command(BaseCommand):
    help = "Import articles (Markdown + front matter) by slug: idempotent; bad files stop the import, naming the file."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument(
            "--no-index", action="store_true", help="leave indexing to the workers instead of doing it here"
        )

    def handle(self, *args, directory, no_index, **options):
        try:
            if no_index:
                report = articles_import(directory)
                jobs = []
            else:
                with indexing_collected() as jobs:
                    report = articles_import(directory)
        except ImportFailed as error:
            raise CommandError(f"{error}\nNothing was imported.") from error
        for label, slugs in (
            ("created", report.created),
            ("updated", report.updated),
            ("status changed", report.status_changed),
            ("unchanged", report.unchanged),
        ):
            if slugs:
                self.stdout.write(f"{label} ({len(slugs)}): {', '.join(slugs)}")
        if not (report.created or report.updated or report.status_changed or report.unchanged):
            self.stdout.write("No articles (*.md) found.")
        failed = jobs_run_with_progress(jobs, stream=self.stderr) if jobs else []
        self.stdout.write(self.style.SUCCESS(f"{len(report.changed)} changed, {len(report.unchanged)} unchanged."))
        if failed:
            errors = "\n".join(job.error for job in failed)
            raise CommandError(
                f"Imported, but some articles could not be indexed (reindex_articles retries):\n{errors}"
            )
