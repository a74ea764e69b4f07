"""Reads of the governance app, scoped to what the caller may see."""

from datetime import datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from governance.access import organization_get_for_member
from governance.models import AuditExport, AuditRecord, Membership


def organization_members(*, user, organization_id: int) -> QuerySet[Membership]:
    """Members of a practice the caller belongs to, active ones first, by name."""
    organization = organization_get_for_member(user=user, organization_id=organization_id)
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("-is_active", "user__last_name", "user__first_name", "user__id")
    )


def user_memberships(*, user) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user, is_active=True)
        .select_related("organization")
        .order_by("organization__name")
    )


def audit_records(
    *,
    actor: str = "",
    organization=None,
    kind: str = "",
    action: str = "",
    object: str = "",  # noqa: A002 — the trail's own word: "support.calendaraccess" or "support.actionproposal:12"
    since=None,
    until=None,
    correlation_id: str = "",
) -> QuerySet[AuditRecord]:
    """The whole audit trail (changes, security events, sensitive reads), newest first, filtered.

    `since` and `until` are dates, both included, in TIME_ZONE. `actor` matches a username or a name."""
    records = AuditRecord.objects.select_related("actor", "organization")
    if actor:
        records = records.filter(
            Q(actor__username__icontains=actor)
            | Q(actor__first_name__icontains=actor)
            | Q(actor__last_name__icontains=actor)
        )
    if organization is not None:
        records = records.filter(organization=organization)
    if kind:
        records = records.filter(kind=kind)
    if action:
        records = records.filter(action=action)
    if object:
        object_type, _, object_id = object.partition(":")
        records = records.filter(object_type=object_type.strip().lower())
        if object_id.strip():
            records = records.filter(object_id=object_id.strip())
    if since:
        records = records.filter(at__gte=_start_of(since))
    if until:
        records = records.filter(at__lt=_start_of(until + timedelta(days=1)))
    if correlation_id:
        records = records.filter(correlation_id=correlation_id.strip())
    return records


def audit_actions() -> list[str]:
    """The actions the trail holds, for the filter's choices."""
    return list(AuditRecord.objects.order_by("action").values_list("action", flat=True).distinct())


def _start_of(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_exports() -> QuerySet[AuditExport]:
    return AuditExport.objects.select_related("requested_by")
