"""The platform API as a logged-in person sees it: scoping, error format, idempotency, query counts.

The two-token path is covered in tests/governance/test_token_matrix.py.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from support.models import CalendarAccess
from tests.factories import CalendarAccessFactory, CalendarFactory, MembershipFactory, UserFactory


def access_url(calendar, user):
    return f"/api/v1/calendars/{calendar.pk}/access/{user.pk}/"


def test_me_lists_active_memberships(practice, as_user):
    response = as_user(practice.anna).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["name"] == "Anna Novak"
    assert response.json()["memberships"] == [
        {"organization_id": practice.org.pk, "organization_name": "Harbour Dental Practice", "role": "practitioner"}
    ]


def test_unauthenticated_is_401_json(db):
    response = APIClient().get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_members_of_my_practice(practice, as_user):
    response = as_user(practice.tom).get(f"/api/v1/organizations/{practice.org.pk}/members/")

    assert response.status_code == 200
    names = [row["user"]["name"] for row in response.json()["results"]]
    assert names == ["Tom Fisher", "Léa Girard", "Anna Novak", "Ben Okafor", "Tomas Reyes"]


def test_members_of_another_practice_are_404(practice, as_user):
    response = as_user(practice.tom).get(f"/api/v1/organizations/{practice.other_org.pk}/members/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such organization."}


def test_calendars_are_those_i_own_or_can_access_with_my_level(practice, as_user):
    rows = as_user(practice.lea).get("/api/v1/calendars/").json()["results"]

    assert [(row["name"], row["my_level"]) for row in rows] == [("Dr Okafor appointments", "manage")]
    rows = as_user(practice.anna).get("/api/v1/calendars/").json()["results"]
    assert [(row["name"], row["my_level"]) for row in rows] == [
        ("Dr Novak appointments", "manage"),
        ("Dr Novak surgery", "manage"),
    ]


def test_access_list_is_for_owner_and_managers(practice, as_user):
    owner = as_user(practice.ben).get(f"/api/v1/calendars/{practice.okafor_main.pk}/access/")
    manager = as_user(practice.lea).get(f"/api/v1/calendars/{practice.okafor_main.pk}/access/")
    viewer = as_user(practice.tom).get(f"/api/v1/calendars/{practice.novak_main.pk}/access/")
    stranger = as_user(practice.iris).get(f"/api/v1/calendars/{practice.novak_main.pk}/access/")

    assert owner.status_code == manager.status_code == 200
    assert [(row["user"]["name"], row["level"]) for row in owner.json()["results"]] == [("Léa Girard", "manage")]
    assert viewer.status_code == 403 and viewer.json()["code"] == "not_allowed"
    assert stranger.status_code == 404


def test_put_grants_then_is_idempotent_then_changes(practice, as_user):
    client = as_user(practice.anna)
    url = access_url(practice.novak_surgery, practice.tomas)

    created = client.put(url, {"level": "view"}, format="json")
    again = client.put(url, {"level": "view"}, format="json")
    changed = client.put(url, {"level": "book"}, format="json")

    assert (created.status_code, again.status_code, changed.status_code) == (201, 200, 200)
    assert changed.json()["level"] == "book"
    assert CalendarAccess.objects.get(calendar=practice.novak_surgery, user=practice.tomas).level == "book"


def test_delete_revokes_and_a_second_delete_is_a_clear_404(practice, as_user):
    client = as_user(practice.anna)
    url = access_url(practice.novak_main, practice.tom)

    first = client.delete(url)
    second = client.delete(url)

    assert first.status_code == 204
    assert second.status_code == 404
    assert second.json() == {"code": "access_not_found", "detail": "Tom Fisher has no access to Dr Novak appointments."}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"level": "owner"}, 400, "invalid"),
        ({}, 400, "invalid"),
        ("not json", 400, "parse_error"),
    ],
)
def test_bad_bodies_are_400_and_change_nothing(practice, as_user, body, status, code):
    client = as_user(practice.anna)
    url = access_url(practice.novak_main, practice.tom)

    if body == "not json":
        response = client.generic("PUT", url, "{not json", content_type="application/json")
    else:
        response = client.put(url, body, format="json")

    assert response.status_code == status
    assert response.json()["code"] == code
    assert CalendarAccess.objects.get(calendar=practice.novak_main, user=practice.tom).level == "view"


def test_refusals_have_their_own_codes(practice, as_user):
    anna = as_user(practice.anna)

    own = anna.put(access_url(practice.novak_main, practice.anna), {"level": "view"}, format="json")
    owner = as_user(practice.lea).put(access_url(practice.okafor_main, practice.ben), {"level": "view"}, format="json")
    foreign_user = anna.put(access_url(practice.novak_main, practice.iris), {"level": "view"}, format="json")
    foreign_calendar = anna.put(access_url(practice.walsh_main, practice.tom), {"level": "view"}, format="json")
    unknown = anna.put("/api/v1/calendars/999999/access/1/", {"level": "view"}, format="json")

    assert (own.status_code, own.json()["code"]) == (403, "self_change")
    assert (owner.status_code, owner.json()["code"]) == (409, "owner_access")
    assert (foreign_user.status_code, foreign_user.json()["code"]) == (404, "member_not_found")
    assert (foreign_calendar.status_code, foreign_calendar.json()["code"]) == (404, "not_found")
    assert unknown.status_code == 404
    assert not CalendarAccess.objects.filter(user__in=[practice.anna, practice.ben, practice.iris]).exists()


def test_viewer_cannot_share(practice, as_user):
    response = as_user(practice.tom).put(
        access_url(practice.novak_main, practice.lea), {"level": "book"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_calendar_manager"
    assert not CalendarAccess.objects.filter(user=practice.lea, calendar=practice.novak_main).exists()


def _query_count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_list_endpoints_do_not_grow_queries_with_rows(practice, as_user):
    client = as_user(practice.anna)
    urls = [
        f"/api/v1/organizations/{practice.org.pk}/members/",
        "/api/v1/calendars/",
        f"/api/v1/calendars/{practice.novak_main.pk}/access/",
    ]
    before = [_query_count(client, url) for url in urls]

    for n in range(20):
        user = UserFactory(username=f"extra{n}")
        MembershipFactory(user=user, organization=practice.org)
        CalendarAccessFactory(calendar=practice.novak_main, user=user, granted_by=practice.anna)
        granted = CalendarFactory(organization=practice.org, owner=practice.ben, name=f"Extra {n}")
        CalendarAccessFactory(calendar=granted, user=practice.anna, granted_by=practice.ben)
    after = [_query_count(client, url) for url in urls]

    assert after == before
    assert max(after) <= 6  # session, user, membership check, count, page (+ one for the scoped calendar)


def test_lists_are_paginated(practice, as_user):
    for n in range(5):
        MembershipFactory(user=UserFactory(username=f"page{n}"), organization=practice.org)

    response = as_user(practice.anna).get(f"/api/v1/organizations/{practice.org.pk}/members/?page_size=4&page=2")

    assert response.json()["count"] == 10
    assert len(response.json()["results"]) == 4
    assert response.json()["next"] and response.json()["previous"]


def test_openapi_schema_and_docs_are_served(db, client):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200 and b"/api/v1/calendars/{calendar_id}/access/{user_id}/" in schema.content
    assert docs.status_code == 200
