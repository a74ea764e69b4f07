"""Writes of the practice domain. Every rule about who may change calendar access lives here.

The rules: the actor owns the calendar or has manage on it (and is an active member of its practice);
the grantee is an active member of the calendar's practice; the owner's own access cannot be changed;
nobody grants or changes anything for themselves; revoking what does not exist is a clear error.
Each write is audited with the actor (and the calling service, when it came through one).
"""

from django.db import transaction

from governance.audit import audit_context
from governance.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from governance.models import Membership
from support.models import AccessLevel, Calendar, CalendarAccess
from support.selectors import calendar_level


def _check_actor(*, actor, calendar: Calendar) -> None:
    if not Membership.objects.filter(user=actor, organization_id=calendar.organization_id, is_active=True).exists():
        raise NotFound("No such calendar.")
    if calendar_level(user=actor, calendar=calendar) != AccessLevel.MANAGE:
        raise NotAllowed(
            "Only the calendar's owner or a member with manage access can change who has access to it.",
            code="not_calendar_manager",
        )


def _check_grantee(*, actor, calendar: Calendar, user, must_be_active: bool) -> None:
    membership = Membership.objects.filter(user=user, organization_id=calendar.organization_id).first()
    if membership is None:
        raise NotFound("No such member in this practice.", code="member_not_found")
    if user.pk == actor.pk:
        raise NotAllowed("Nobody can grant or change their own access.", code="self_change")
    if user.pk == calendar.owner_id:
        raise Conflict(
            "The owner of a calendar always manages it; their access cannot be changed.", code="owner_access"
        )
    if must_be_active and not (membership.is_active and user.is_active):
        raise ValidationFailed(f"{user.display_name} is not an active member of this practice.", code="inactive_member")


def _audit_data(calendar: Calendar, proposal_id: int | None, token: str) -> dict:
    """What an access change's audit entry concerns: its practice (the compliance trail filters by it), the
    proposal it carries out and the calling service's token id (`jti`), if any."""
    data = {"organization": calendar.organization_id}
    if proposal_id is not None:
        data["proposal"] = proposal_id
    if token:
        data["token"] = token
    return data


def _check_level(level: str) -> None:
    if level not in AccessLevel.values:
        raise ValidationFailed(f"Unknown access level {level!r}: use view, book or manage.", code="invalid_level")


@transaction.atomic
def calendar_access_grant(
    *, actor, calendar: Calendar, user, level: str, via: str = "", proposal_id: int | None = None, token: str = ""
) -> CalendarAccess:
    """Give `user` access at `level` to `calendar`. Conflict if they already have some: change it instead."""
    _check_level(level)
    _check_actor(actor=actor, calendar=calendar)
    _check_grantee(actor=actor, calendar=calendar, user=user, must_be_active=True)
    if CalendarAccess.objects.filter(calendar=calendar, user=user).exists():
        raise Conflict(f"{user.display_name} already has access to {calendar.name}.", code="already_granted")
    with audit_context(actor=actor, service=via, data=_audit_data(calendar, proposal_id, token)):
        return CalendarAccess.objects.create(calendar=calendar, user=user, level=level, granted_by=actor)


@transaction.atomic
def calendar_access_change(
    *, actor, calendar: Calendar, user, level: str, via: str = "", proposal_id: int | None = None, token: str = ""
) -> CalendarAccess:
    """Change the level of an existing access. Changing to the same level changes nothing."""
    _check_level(level)
    _check_actor(actor=actor, calendar=calendar)
    _check_grantee(actor=actor, calendar=calendar, user=user, must_be_active=True)
    access = CalendarAccess.objects.select_for_update().filter(calendar=calendar, user=user).first()
    if access is None:
        raise NotFound(f"{user.display_name} has no access to {calendar.name}.", code="access_not_found")
    if access.level != level:
        access.level = level
        access.granted_by = actor
        with audit_context(actor=actor, service=via, data=_audit_data(calendar, proposal_id, token)):
            access.save(update_fields=["level", "granted_by", "updated_at"])
    return access


@transaction.atomic
def calendar_access_set(
    *, actor, calendar: Calendar, user, level: str, via: str = "", proposal_id: int | None = None, token: str = ""
) -> tuple[CalendarAccess, bool]:
    """Grant or change, whichever applies (the API's idempotent PUT). Returns (access, created).
    `proposal_id`: the confirmed proposal this carries out, recorded with the change."""
    exists = CalendarAccess.objects.filter(calendar=calendar, user=user).exists()
    change = calendar_access_change if exists else calendar_access_grant
    changed = change(
        actor=actor, calendar=calendar, user=user, level=level, via=via, proposal_id=proposal_id, token=token
    )
    return changed, not exists


@transaction.atomic
def calendar_access_revoke(
    *, actor, calendar: Calendar, user, via: str = "", proposal_id: int | None = None, token: str = ""
) -> None:
    """Remove `user`'s access to `calendar`. NotFound if they have none. Inactive members can be revoked."""
    _check_actor(actor=actor, calendar=calendar)
    _check_grantee(actor=actor, calendar=calendar, user=user, must_be_active=False)
    access = CalendarAccess.objects.select_for_update().filter(calendar=calendar, user=user).first()
    if access is None:
        raise NotFound(f"{user.display_name} has no access to {calendar.name}.", code="access_not_found")
    with audit_context(actor=actor, service=via, data=_audit_data(calendar, proposal_id, token)):
        access.delete()
