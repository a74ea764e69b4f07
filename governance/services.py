"""Writes of the governance app."""

import logging

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from governance.models import AuditRead, SecurityEvent

logger = logging.getLogger(__name__)


def security_event_record(
    *,
    kind: str,
    reason: str,
    detail: str = "",
    service: str = "",
    user=None,
    method: str = "",
    path: str = "",
    remote_addr: str | None = None,
) -> SecurityEvent:
    """Record a refusal (token, caller, access) and log it as a warning."""
    logger.warning(
        "security event %s: %s",
        kind,
        reason,
        extra={"kind": kind, "reason": reason, "service": service, "path": path, "remote_addr": remote_addr},
    )
    return SecurityEvent.objects.create(
        kind=kind,
        reason=reason,
        detail=detail[:2000],
        service=service[:100],
        user=user if user is not None and user.is_authenticated else None,
        method=method[:10],
        path=path[:500],
        remote_addr=remote_addr,
    )


# What each platform role may see in the Django admin. Codenames, not model imports: governance stays
# below the apps whose models it names.
PLATFORM_GROUPS = {
    "support": (
        "Support staff",
        [
            "governance.view_user",
            "governance.view_organization",
            "governance.view_membership",
            "governance.view_securityevent",
            "support.view_calendar",
            "support.view_calendaraccess",
            "auditlog.view_logentry",
            "knowledge.view_article",
            "knowledge.view_articlerevision",
            "knowledge.view_reindexjob",
        ],
    ),
    "compliance": ("Compliance officers", ["auditlog.view_logentry", "governance.view_securityevent"]),
}


def platform_group(role: str) -> Group:
    """The group of a platform role, created if missing; permissions added since it was created are added."""
    name, permission_names = PLATFORM_GROUPS[role]
    group, created = Group.objects.get_or_create(name=name)
    query = Q(pk__in=[])
    for permission_name in permission_names:
        app_label, codename = permission_name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    wanted = set(Permission.objects.filter(query).values_list("pk", flat=True))
    missing = wanted - set(group.permissions.values_list("pk", flat=True))
    if missing:
        group.permissions.add(*missing)
    return group


def user_platform_groups_sync(*, user) -> None:
    """Put a saved user in the group of their platform role, and in no other platform group."""
    names = {name for name, _ in PLATFORM_GROUPS.values()}
    user.groups.remove(*user.groups.filter(name__in=names))
    if user.platform_role in PLATFORM_GROUPS:
        user.groups.add(platform_group(user.platform_role))


def login_failure_record(sender, credentials: dict, request=None, **kwargs) -> None:
    """A failed password login, as a security event (the username tried, never the password)."""
    origin = {}
    if request is not None:
        origin = {"method": request.method, "path": request.path[:500], "remote_addr": request.META.get("REMOTE_ADDR")}
    security_event_record(
        kind="login_failed", reason="bad_credentials", detail=str(credentials.get("username", ""))[:150], **origin
    )


def login_success_record(sender, request=None, user=None, **kwargs) -> None:
    """A successful login, as a security event (the compliance trail shows logins and their failures)."""
    backend = getattr(user, "backend", "") or ""
    origin = {}
    if request is not None:  # a test client's forced login has a request with no method
        origin = {
            "method": request.method or "",
            "path": (request.path or "")[:500],
            "remote_addr": request.META.get("REMOTE_ADDR"),
        }
    logger.info("login of user %s", getattr(user, "pk", None))
    reason = "oidc" if "oidc" in backend.lower() else "password"
    SecurityEvent.objects.create(kind="login", reason=reason, user=user, **origin)


def audit_read_record(*, user, what: str, reason: str, target: str = "", query: dict | None = None, remote_addr=None):
    """Record a sensitive read (the trail, a chain, an export): who, what, when (now) and why. Sealed into the
    audit chain like any audit record (governance.audit_chain)."""
    return AuditRead.objects.create(
        user=user,
        what=what,
        target=target[:200],
        query=query or {},
        reason=reason[:1000],
        remote_addr=remote_addr,
    )
