"""GET /healthz: the state of the database, Redis and the Celery workers; 503 when one is down."""

import logging
import time

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils.log import log_response
from django.views.decorators.cache import never_cache

from alfred.celery import app as celery_app

logger = logging.getLogger(__name__)

# A 503 is how a starting Alfred says "not yet": `make run` (alfred/launcher.py, which gives up after 90 s) and
# orchestrators poll /healthz while the worker starts. Django would log each 503 at ERROR (django.request);
# the view logs it itself instead: at INFO while this process is young (start-up, not a fault, and several
# polls per start), at WARNING afterwards (something that was up went down, or never came up). Counted from
# the first import of this module, which the server does when it loads the URLs for its first request.
START_UP_SECONDS = 120
_STARTED_AT = time.monotonic()


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = {"ok": True, **(check() or {})}
    except Exception as exc:  # noqa: BLE001 — a health check reports any failure instead of raising it
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return {"pgvector": row[0] if row else None}


def _redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _celery() -> dict:
    # limit=1: return as soon as one worker answers instead of waiting out the timeout
    replies = celery_app.control.ping(timeout=settings.HEALTH_CELERY_TIMEOUT, limit=1) or []
    if not replies:
        raise RuntimeError("no worker answered")
    return {"worker": next(iter(replies[0]))}


@never_cache
def healthz(request):
    checks = {"database": _timed(_database), "redis": _timed(_redis), "celery": _timed(_celery)}
    healthy = all(check["ok"] for check in checks.values())
    response = JsonResponse({"status": "ok" if healthy else "fail", "checks": checks}, status=200 if healthy else 503)
    if not healthy:
        _log_not_ready(request, response, checks)
    return response


def _log_not_ready(request, response, checks: dict) -> None:
    """Log a 503 once, at the level of what it means, naming what is not ready; Django then skips it
    (log_response marks the response as logged)."""
    starting = time.monotonic() - _STARTED_AT < START_UP_SECONDS
    failures = "; ".join(f"{name}: {check['error']}" for name, check in checks.items() if not check["ok"])
    log_response(
        "Service Unavailable while starting: %s (%s)" if starting else "Service Unavailable: %s (%s)",
        request.path,
        failures,
        response=response,
        request=request,
        logger=logger,
        level="info" if starting else "warning",
    )
