"""Reads of the governance app, scoped to what the caller may see."""

from django.db.models import QuerySet

from governance.access import organization_get_for_member
from governance.models import Membership


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
