"""The rules of calendar access, through the services that hold them."""

import pytest
from auditlog.models import LogEntry

from governance.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from support.models import CalendarAccess
from support.services import (
    calendar_access_change,
    calendar_access_grant,
    calendar_access_revoke,
    calendar_access_set,
)


def level_of(calendar, user):
    access = CalendarAccess.objects.filter(calendar=calendar, user=user).first()
    return access.level if access else None


def test_owner_grants_a_member(practice):
    access = calendar_access_grant(
        actor=practice.anna, calendar=practice.novak_surgery, user=practice.tomas, level="book"
    )

    assert access.level == "book"
    assert access.granted_by == practice.anna


def test_manager_who_is_not_owner_grants(practice):
    calendar_access_grant(actor=practice.lea, calendar=practice.okafor_main, user=practice.tomas, level="book")

    assert level_of(practice.okafor_main, practice.tomas) == "book"


@pytest.mark.parametrize("level", ["view", "book"])
def test_member_without_manage_cannot_grant(practice, level):
    calendar_access_change(actor=practice.anna, calendar=practice.novak_main, user=practice.tom, level=level)

    with pytest.raises(NotAllowed):
        calendar_access_grant(actor=practice.tom, calendar=practice.novak_main, user=practice.lea, level="view")
    assert level_of(practice.novak_main, practice.lea) is None


def test_member_with_no_access_cannot_grant(practice):
    with pytest.raises(NotAllowed):
        calendar_access_grant(actor=practice.tomas, calendar=practice.novak_main, user=practice.lea, level="view")


def test_member_of_another_practice_cannot_be_granted(practice):
    with pytest.raises(NotFound):
        calendar_access_grant(actor=practice.anna, calendar=practice.novak_main, user=practice.iris, level="view")
    assert level_of(practice.novak_main, practice.iris) is None


def test_actor_of_another_practice_sees_nothing(practice):
    with pytest.raises(NotFound):
        calendar_access_grant(actor=practice.iris, calendar=practice.novak_main, user=practice.lea, level="view")


def test_inactive_member_cannot_be_granted(practice):
    practice.tomas.memberships.update(is_active=False)

    with pytest.raises(ValidationFailed):
        calendar_access_grant(actor=practice.anna, calendar=practice.novak_main, user=practice.tomas, level="view")


def test_inactive_member_can_still_be_revoked(practice):
    practice.tom.memberships.update(is_active=False)

    calendar_access_revoke(actor=practice.anna, calendar=practice.novak_main, user=practice.tom)

    assert level_of(practice.novak_main, practice.tom) is None


def test_former_member_cannot_act_even_with_manage(practice):
    practice.lea.memberships.update(is_active=False)

    with pytest.raises(NotFound):
        calendar_access_grant(actor=practice.lea, calendar=practice.okafor_main, user=practice.tomas, level="view")


def test_owner_access_cannot_be_changed(practice):
    with pytest.raises(Conflict):
        calendar_access_grant(actor=practice.lea, calendar=practice.okafor_main, user=practice.ben, level="view")
    with pytest.raises(Conflict):
        calendar_access_revoke(actor=practice.lea, calendar=practice.okafor_main, user=practice.ben)


def test_nobody_grants_themselves(practice):
    with pytest.raises(NotAllowed):
        calendar_access_change(actor=practice.lea, calendar=practice.okafor_main, user=practice.lea, level="view")
    with pytest.raises(NotAllowed):
        calendar_access_grant(actor=practice.anna, calendar=practice.novak_main, user=practice.anna, level="manage")
    assert level_of(practice.okafor_main, practice.lea) == "manage"


def test_grant_twice_is_a_conflict_and_set_is_idempotent(practice):
    with pytest.raises(Conflict):
        calendar_access_grant(actor=practice.anna, calendar=practice.novak_main, user=practice.tom, level="book")

    first, created = calendar_access_set(
        actor=practice.anna, calendar=practice.novak_main, user=practice.tom, level="book"
    )
    again, created_again = calendar_access_set(
        actor=practice.anna, calendar=practice.novak_main, user=practice.tom, level="book"
    )

    assert (created, created_again) == (False, False)
    assert first.pk == again.pk and again.level == "book"


def test_change_of_missing_access_is_a_clear_error(practice):
    with pytest.raises(NotFound, match="has no access"):
        calendar_access_change(actor=practice.anna, calendar=practice.novak_surgery, user=practice.tom, level="book")


def test_revoking_what_does_not_exist_is_a_clear_error(practice):
    with pytest.raises(NotFound, match="Léa Girard has no access to Dr Novak surgery"):
        calendar_access_revoke(actor=practice.anna, calendar=practice.novak_surgery, user=practice.lea)


def test_unknown_level_is_refused(practice):
    with pytest.raises(ValidationFailed):
        calendar_access_grant(actor=practice.anna, calendar=practice.novak_surgery, user=practice.tom, level="owner")


def test_every_change_is_audited_with_its_actor_and_service(practice):
    access = calendar_access_grant(
        actor=practice.anna, calendar=practice.novak_surgery, user=practice.tomas, level="view", via="agents"
    )
    calendar_access_change(actor=practice.anna, calendar=practice.novak_surgery, user=practice.tomas, level="book")
    calendar_access_revoke(actor=practice.anna, calendar=practice.novak_surgery, user=practice.tomas)

    entries = LogEntry.objects.get_for_object(access).order_by("timestamp")
    assert [entry.action for entry in entries] == [
        LogEntry.Action.CREATE,
        LogEntry.Action.UPDATE,
        LogEntry.Action.DELETE,
    ]
    assert {entry.actor for entry in entries} == {practice.anna}
    assert entries[0].additional_data == {"service": "agents", "organization": practice.org.pk}
    assert entries[1].changes_dict["level"] == ["view", "book"]
