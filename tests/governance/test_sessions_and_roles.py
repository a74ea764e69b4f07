"""Local login sessions expire; platform roles put people in the admin groups that match them."""

from datetime import timedelta

from django.contrib.sessions.models import Session
from django.utils import timezone

from governance.models import SecurityEvent
from governance.services import PLATFORM_GROUPS, user_platform_groups_sync
from tests.factories import UserFactory


def test_login_then_an_expired_session_sends_back_to_login(db, client):
    UserFactory(username="nadia")
    assert client.post("/accounts/login/", {"username": "nadia", "password": "pw-for-tests"}).status_code == 302
    assert client.get("/").status_code == 200

    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_session_lasts_a_working_day(settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600


def test_login_with_a_wrong_password_is_refused(db, client):
    UserFactory(username="nadia")

    response = client.post("/accounts/login/", {"username": "nadia", "password": "guess"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_platform_role_decides_the_admin_group(db):
    user = UserFactory(platform_role="support", is_staff=True)
    user_platform_groups_sync(user=user)
    assert list(user.groups.values_list("name", flat=True)) == [PLATFORM_GROUPS["support"][0]]
    assert user.has_perm("support.view_calendar") and not user.has_perm("support.change_calendar")

    user.platform_role = "member"
    user.save(update_fields=["platform_role"])
    user_platform_groups_sync(user=user)

    assert not user.groups.exists()


def test_a_failed_login_is_a_security_event_without_the_password(db, client):
    client.post("/accounts/login/", {"username": "mallory", "password": "hunter2"})

    (event,) = SecurityEvent.objects.all()
    assert (event.kind, event.reason, event.detail) == ("login_failed", "bad_credentials", "mallory")
    assert "hunter2" not in str(vars(event))
