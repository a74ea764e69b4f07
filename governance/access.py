"""The one door to practices: every lookup of an organization by id goes through here, scoped to the caller."""

from governance.errors import NotFound
from governance.models import Membership, Organization


def active_membership(*, user, organization_id: int) -> Membership | None:
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization_id=organization_id, is_active=True, user__is_active=True)
        .first()
    )


def organization_get_for_member(*, user, organization_id: int) -> Organization:
    """The organization if `user` is an active member of it; NotFound otherwise (never reveal others)."""
    membership = active_membership(user=user, organization_id=organization_id)
    if membership is None:
        raise NotFound("No such organization.")
    return membership.organization
