"""Who did it: the actor (and calling service) recorded on every audited change.

django-auditlog's own context (`set_actor`) does not restore an outer context when it exits, so a
service called inside a request would leave the rest of that request unattributed. `audit_context`
restores it. Every service that writes wraps its writes in one.
"""

from contextlib import contextmanager

from auditlog.context import auditlog_value, set_extra_data


@contextmanager
def audit_context(*, actor, service: str = ""):
    outer = auditlog_value.get(None)
    extra = {"actor": actor}
    if service:
        extra["additional_data"] = {"service": service}
    try:
        with set_extra_data(context_data=extra):
            yield
    finally:
        if outer is not None:
            auditlog_value.set(outer)
