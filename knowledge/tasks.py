"""Knowledge tasks run by Celery workers: (re)indexing after a publish or a change of embedding model."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from knowledge.models import ReindexJob

logger = logging.getLogger(__name__)


@shared_task(
    name="knowledge.reindex", acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700
)
def reindex(job_id: int) -> None:
    """Run one reindex job. A job already finished (a redelivered task) is not run twice."""
    from knowledge.indexing import reindex_job_run

    job = ReindexJob.objects.filter(pk=job_id).first()
    if job is None or job.state in (ReindexJob.State.DONE, ReindexJob.State.FAILED):
        return
    reindex_job_run(job)


@worker_ready.connect
def _reindex_stale_articles(**kwargs) -> None:
    """When a worker starts: index what is missing, failed, or embedded by another model than the configured one
    (changing EMBEDDINGS_PROVIDER/EMBEDDINGS_MODEL re-embeds everything)."""
    try:
        from knowledge.indexing import articles_to_reindex

        if articles_to_reindex():
            job = ReindexJob.objects.create(reason="stale or missing index")
            reindex.delay(job.pk)
    except Exception:  # noqa: BLE001 — a worker must start even when the index cannot be checked
        logger.exception("knowledge: could not check the index at worker start")
