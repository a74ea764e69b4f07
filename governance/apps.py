from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance: identity, policy and audit"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from governance import (
            audit_chain,
            schema,  # noqa: F401 — registers the API's authentication in the OpenAPI schema
        )
        from governance.correlation import connect_task_signals
        from governance.services import login_failure_record, login_success_record
        from governance.sessions import on_logged_out

        # Django announces failed logins and logouts only through these signals.
        user_login_failed.connect(login_failure_record, dispatch_uid="governance.login_failure_record")
        user_logged_in.connect(login_success_record, dispatch_uid="governance.login_success_record")
        user_logged_out.connect(on_logged_out, dispatch_uid="governance.sessions.on_logged_out")
        _refresh_content_types_per_unit_of_work()
        connect_task_signals()
        audit_chain.connect()  # every audit record is sealed into the hash chain when written


def _refresh_content_types_per_unit_of_work() -> None:
    """Forget cached content type ids at each request and each task.

    django-auditlog writes the content type of every change. Content types can be recreated under a
    long-running process (a database restore; the test suite's flush between tests), and a stale cached
    id then breaks every audited write of that process. Refilling the cache costs one small query per model.
    """
    from celery.signals import task_prerun
    from django.contrib.contenttypes.models import ContentType
    from django.core.signals import request_started

    def clear(**kwargs):
        ContentType.objects.clear_cache()

    request_started.connect(clear, weak=False, dispatch_uid="governance.content_types.request")
    task_prerun.connect(clear, weak=False, dispatch_uid="governance.content_types.task")
