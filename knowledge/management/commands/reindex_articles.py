"""python manage.py reindex_articles [--all] [--async] — index what needs it, with a progress bar."""

from django.core.management.base import BaseCommand, CommandError

from knowledge.embeddings import embedder
from knowledge.indexing import REINDEX_EVERYTHING, articles_to_reindex
from knowledge.management.progress import job_run_with_progress
from knowledge.models import ReindexJob
from knowledge.tasks import reindex


class Command(BaseCommand):
    help = (
        "Index published articles whose index is missing, failed or made by another embedding model "
        "(--all: every published article). Runs here with a progress bar, or in a worker with --async."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", dest="everything", help="re-embed every published article")
        parser.add_argument("--async", action="store_true", dest="in_worker", help="queue the job for a worker")

    def handle(self, *args, everything, in_worker, **options):
        pending = articles_to_reindex(everything=everything)
        self.stdout.write(f"Embedding model: {embedder().name}. Articles to index: {len(pending)}.")
        if not pending:
            return
        job = ReindexJob.objects.create(reason=REINDEX_EVERYTHING if everything else "reindex_articles")
        if in_worker:
            reindex.delay(job.pk)
            self.stdout.write(f"Queued as job {job.pk}; its progress shows in the console and the admin.")
            return
        job = job_run_with_progress(job, stream=self.stderr, everything=everything)
        if job.state == ReindexJob.State.FAILED:
            raise CommandError(f"Some articles could not be indexed:\n{job.error}")
        self.stdout.write(self.style.SUCCESS(f"{job.done} articles indexed."))
