"""Correlation ids: one id for everything one request, one WebSocket frame or one chat turn causes.

Every audit entry (django-auditlog's `cid`, through `AUDITLOG_CID_GETTER`), every security event, every log
line and every agent run carries the id of the unit of work it came from, so a compliance officer can follow
a member's click to the access change it caused:

- a web request gets a fresh id (`CorrelationIdMiddleware`), returned in the `X-Request-ID` response header;
- a WebSocket frame gets a fresh id (`SessionSocket` wraps each frame in `correlation()`);
- a Celery task runs under the id of the request or frame that queued it (the id travels in the task's
  headers: `before_task_publish` / `task_prerun` below) — so a chat turn shares the id of the message that
  started it, and a confirmed proposal's execution the id of the confirmation;
- the platform API, called by a worker, adopts the caller's `X-Request-ID` only once the service JWT has been
  verified (`ServiceTokenAuthentication`): a browser or an unknown caller cannot choose the id written in
  the audit trail.

An id is 32 hexadecimal characters (a UUID4); an adopted one must match `VALID`, or a fresh one is kept.
"""

import logging
import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"
TASK_HEADER = "alfred_correlation_id"
VALID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

_current: ContextVar[str | None] = ContextVar("alfred_correlation_id", default=None)


def new_id() -> str:
    return uuid.uuid4().hex


def current() -> str | None:
    """The id of the unit of work running now (None outside any: a shell, a migration)."""
    return _current.get()


@contextmanager
def correlation(cid: str | None = None):
    """Run the block under `cid` (a valid one) or a fresh id; the outer id is restored after."""
    token = _current.set(cid if cid and VALID.match(cid) else new_id())
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_or_blank() -> str:
    """A model field's default: the id of the unit of work that creates the row."""
    return _current.get() or ""


def adopt(cid: str | None) -> None:
    """Continue a trusted caller's unit of work (its id is valid): used after its service token is verified."""
    if cid and VALID.match(cid):
        _current.set(cid)


class CorrelationIdMiddleware:
    """A fresh id for each request (never the client's: see `adopt`), sent back as `X-Request-ID`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with correlation() as cid:
            request.correlation_id = cid
            response = self.get_response(request)
            response[HEADER] = current() or cid  # the API may have adopted its caller's id
        return response


class CorrelationFilter(logging.Filter):
    """Adds `cid` to every log record ("-" outside a unit of work)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.cid = current() or "-"
        return True


def connect_task_signals() -> None:
    """A task runs under the id of whoever queued it (a fresh one when queued outside any unit of work)."""
    from celery.signals import before_task_publish, task_postrun, task_prerun

    tokens = {}

    def on_publish(headers=None, **kwargs):
        if headers is not None and current():
            headers[TASK_HEADER] = current()

    def on_start(task_id=None, task=None, **kwargs):
        cid = getattr(task.request, TASK_HEADER, None) or (task.request.headers or {}).get(TASK_HEADER)
        tokens[task_id] = _current.set(cid if cid and VALID.match(cid) else new_id())

    def on_end(task_id=None, **kwargs):
        token = tokens.pop(task_id, None)
        if token is not None:
            _current.reset(token)

    before_task_publish.connect(on_publish, weak=False, dispatch_uid="governance.correlation.publish")
    task_prerun.connect(on_start, weak=False, dispatch_uid="governance.correlation.start")
    task_postrun.connect(on_end, weak=False, dispatch_uid="governance.correlation.end")
