"""The Celery app: agent turns, indexing and exports run in workers on the Redis broker."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alfred.settings")

app = Celery("alfred")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="alfred.ping")
def ping() -> str:
    """A no-op round trip through the broker, for health checks and benchmarks."""
    return "pong"


@worker_process_init.connect
def _warm_up_models(**kwargs) -> None:
    """Load the local embedding model when a worker process starts (≈5 s), in the background, so that the
    first person to write does not wait for it: the offline engine's (intents, answers), or the knowledge
    base's when another LLM provider is used with local embeddings."""
    import threading

    from django.conf import settings

    if settings.LLM_PROVIDER == "offline":
        from agents.providers.offline import OfflineChatModel

        target = OfflineChatModel.shared().warm_up
    elif settings.EMBEDDINGS_PROVIDER == "local":
        from knowledge.embeddings import local_model

        target = local_model
    else:
        return
    threading.Thread(target=target, name="warm-up", daemon=True).start()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**kwargs) -> None:
    """As Django does around each request: close the connections past CONN_MAX_AGE or that failed
    (Celery's own fixup closes them around every task unless CELERY_DB_REUSE_MAX is set)."""
    from django.db import close_old_connections

    close_old_connections()
