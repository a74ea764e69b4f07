"""Who did it: the actor (and calling service) recorded on every audited change.

django-auditlog's own context (`set_actor`) does not restore an outer context when it exits, so a
service called inside a request would leave the rest of that request unattributed. `audit_context`
restores it. Every service that writes wraps its writes in one.

Changes made with a conditional `QuerySet.update()` (one owner at a time, at most once) send no signal, so
auditlog sees nothing: `audit_update` writes their log entry explicitly, with the actor and what it concerns.
"""

from contextlib import contextmanager

from auditlog.context import auditlog_value, set_extra_data
from auditlog.models import LogEntry


@contextmanager
def audit_context(*, actor, service: str = "", data: dict | None = None):
    """Attribute the changes made inside to `actor` (and `service`); `data` joins each entry's additional data."""
    outer = auditlog_value.get(None)
    extra = {"actor": actor}
    additional = {**({"service": service} if service else {}), **(data or {})}
    if additional:
        extra["additional_data"] = additional
    try:
        with set_extra_data(context_data=extra):
            yield
    finally:
        if outer is not None:
            auditlog_value.set(outer)


def audit_update(instance, *, actor, changes: dict, data: dict | None = None, service: str = "") -> LogEntry:
    """The log entry of a change made by a conditional update: `changes` is {field: [before, after]}.

    `actor` is the person on whose authority it happened (None for the system, e.g. an expiry found by a
    worker); `data` says what else it concerns (a proposal's decision, its approver, the reason given).
    """
    additional = {**({"service": service} if service else {}), **(data or {})}
    return LogEntry.objects.log_create(
        instance,
        action=LogEntry.Action.UPDATE,
        changes={field: [_text(before), _text(after)] for field, (before, after) in changes.items()},
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        additional_data=additional or None,
    )


def _text(value) -> str | None:
    """auditlog stores changed values as text (or None), as its own diffs do."""
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
