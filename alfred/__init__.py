"""Alfred: configuration and wiring (settings, urls, ASGI routing, the Celery app, the embedded services)."""

from alfred.celery import app as celery_app

__all__ = ["celery_app"]
