"""Correlation ids: each request has its own, returned to the client and written on every audit entry and
security event it causes; only a caller whose service token was verified may continue its own id."""

import pytest
from auditlog.models import LogEntry

from governance.correlation import VALID
from governance.models import SecurityEvent
from support.models import CalendarAccess
from tests.governance.test_token_matrix import call, grant_url, local_token, service_token

pytestmark = pytest.mark.django_db

CALLER_ID = "0f3c1f2a-9b7e-4c1d-8a55-2d6e7f9a0b1c"


def grant(api, practice, keys, *, request_id: str | None = None, service: str | None = None):
    headers = {"Authorization": f"Bearer {service or service_token(keys)}"}
    headers["X-User-Token"] = local_token(keys, practice.anna.pk)
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return api.put(grant_url(practice), {"level": "book"}, format="json", headers=headers)


def test_a_request_gets_an_id_of_its_own_returned_to_the_client(client):
    first, second = client.get("/healthz"), client.get("/healthz")

    assert VALID.match(first["X-Request-ID"]) and len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_verified_service_continues_its_own_id_in_the_audit_trail(api, practice, keys):
    response = grant(api, practice, keys, request_id=CALLER_ID)

    assert response.status_code == 201, response.content
    access = CalendarAccess.objects.get(calendar=practice.novak_main, user=practice.tomas)
    (entry,) = LogEntry.objects.get_for_object(access)
    assert entry.cid == CALLER_ID == response["X-Request-ID"]
    assert entry.actor == practice.anna


@pytest.mark.parametrize("request_id", ["short", "x" * 65, "semi;colon-0123456789", ""])
def test_an_invalid_caller_id_is_replaced_by_a_fresh_one(api, practice, keys, request_id):
    response = grant(api, practice, keys, request_id=request_id)

    access = CalendarAccess.objects.get(calendar=practice.novak_main, user=practice.tomas)
    (entry,) = LogEntry.objects.get_for_object(access)
    assert entry.cid == response["X-Request-ID"] != request_id and len(entry.cid) == 32


def test_a_caller_that_is_not_verified_cannot_choose_the_id(api, practice, keys):
    response = call(api, "put", grant_url(practice), service="forged", user="forged", data={"level": "book"})
    api.credentials()

    assert response.status_code == 401
    (event,) = SecurityEvent.objects.all()
    assert event.correlation_id == response["X-Request-ID"] and len(event.correlation_id) == 32


def test_a_browser_cannot_choose_the_id_of_its_request(client, practice):
    client.force_login(practice.anna)

    response = client.get("/chat/", headers={"X-Request-ID": CALLER_ID})

    assert response["X-Request-ID"] != CALLER_ID
