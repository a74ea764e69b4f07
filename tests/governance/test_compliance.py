"""The compliance console's audit trail: for compliance officers only, every change, refusal and read in one
list with filters and pages, each page read recorded with the officer's reason (and sealed in the chain)."""

import pytest
from auditlog.models import LogEntry

from governance.audit_chain import verify
from governance.models import AuditRead, AuditRecord, AuditSeal, SecurityEvent
from governance.services import security_event_record
from support.models import CalendarAccess
from tests.factories import UserFactory
from tests.support.console_data import support_staff

pytestmark = pytest.mark.django_db

REASON = "Quarterly access review"


@pytest.fixture
def officer(client):
    camille = UserFactory(username="camille", first_name="Camille", last_name="Roux", platform_role="compliance")
    client.force_login(camille)
    session = client.session
    session["compliance_reason"] = REASON
    session.save()
    return camille


def rows(response) -> list[str]:
    return [" ".join(str(row).split()) for row in response.context["page_obj"].object_list]


def test_anyone_but_a_compliance_officer_is_refused(client, practice):
    assert client.get("/compliance/").status_code == 302  # to the login page
    for user in (practice.anna, support_staff()):
        client.force_login(user)
        response = client.get("/compliance/")
        assert response.status_code == 403
        assert "This page is for compliance officers" in response.content.decode()
    assert not AuditRead.objects.exists()


def test_the_officer_says_why_before_reading_and_can_change_it(client):
    client.force_login(UserFactory(username="camille", platform_role="compliance"))

    first = client.get("/compliance/?kind=change")
    several = client.get("/compliance/", {"kind": "change", "actor": "anna"})  # every filter survives the detour
    refused = client.post("/compliance/purpose/", {"reason": "x", "next": "/compliance/?kind=change"})
    given = client.post("/compliance/purpose/", {"reason": REASON, "next": "/compliance/?kind=change"})
    elsewhere = client.post("/compliance/purpose/", {"reason": REASON, "next": "https://evil.example/"})

    assert (
        first.status_code == 302 and first["Location"] == "/compliance/purpose/?next=%2Fcompliance%2F%3Fkind%3Dchange"
    )
    assert several["Location"] == "/compliance/purpose/?next=%2Fcompliance%2F%3Fkind%3Dchange%26actor%3Danna"
    assert refused.status_code == 200 and refused.context["form"].errors["reason"]
    assert given["Location"] == "/compliance/?kind=change"
    assert elsewhere["Location"] == "/compliance/"  # never sent to another site
    assert not AuditRead.objects.exists()  # nothing was read yet


def test_the_trail_shows_changes_refusals_and_reads_newest_first(client, officer, trail):
    client.get("/compliance/")  # this read is in the trail of the next one
    response = client.get("/compliance/")

    records = list(response.context["page_obj"].object_list)
    kinds = [record.kind for record in records]
    assert kinds[0] == "read" and {"change", "security"} <= set(kinds)
    assert [r.at for r in records] == sorted((r.at for r in records), reverse=True)
    grant = next(r for r in records if r.object_type == "support.calendaraccess" and r.action == "create")
    assert (grant.actor, grant.organization, grant.service) == (trail.anna, trail.org, "agents")
    assert grant.seq == AuditSeal.objects.get(kind="logentry", record_id=grant.record_id).seq
    refusal = next(r for r in records if r.kind == "security")
    assert refusal.action == "service_token_refused" and refusal.summary == "expired · PUT /api/v1/calendars/1/"
    page = response.content.decode()
    assert "Anna Novak" in page and "via agents" in page and "Quarterly access review" in page


def test_every_page_read_is_recorded_with_its_reason_and_filters_and_sealed(client, officer, trail):
    client.get("/compliance/", {"actor": "anna", "organization": trail.org.pk, "kind": "change"})

    read = AuditRead.objects.get()
    assert (read.user, read.what, read.reason, read.target) == (officer, "trail", REASON, "page 1")
    assert read.query == {"actor": "anna", "organization": str(trail.org.pk), "kind": "change"}
    assert AuditSeal.objects.filter(kind="auditread", record_id=read.pk).exists()
    assert verify().broken is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"actor": "ben"}, {("change", "delete")}),
        ({"kind": "security"}, {("security", "service_token_refused"), ("security", "login")}),
        ({"object": "support.calendaraccess", "actor": "Novak"}, {("change", "create")}),
        ({"action": "delete"}, {("change", "delete")}),
    ],
)
def test_filters(client, officer, trail, filters, expected):
    response = client.get("/compliance/", filters)

    found = {(r.kind, r.action) for r in response.context["page_obj"].object_list}
    assert found == expected


def test_filter_by_practice_and_by_object_id(client, officer, trail):
    grant = LogEntry.objects.get_for_model(CalendarAccess).get(
        action=LogEntry.Action.CREATE, object_repr__contains="tomas"
    )

    by_practice = client.get("/compliance/", {"organization": trail.other_org.pk, "kind": "change"})
    by_object = client.get("/compliance/", {"object": f"support.calendaraccess:{grant.object_pk}"})

    assert list(by_practice.context["page_obj"].object_list) == []
    assert "No record matches these filters." in by_practice.content.decode()
    assert [r.record_id for r in by_object.context["page_obj"].object_list] == [grant.pk]


def test_filter_by_dates_and_a_clear_error_when_they_are_reversed(client, officer, trail):
    today = SecurityEvent.objects.get(kind="service_token_refused").created_at.date()

    on_the_day = client.get("/compliance/", {"since": today, "until": today, "action": "service_token_refused"})
    reversed_ = client.get("/compliance/", {"since": "2026-12-31", "until": "2026-01-01"})
    malformed = client.get("/compliance/", {"since": "yesterday", "organization": "x"})

    assert len(on_the_day.context["page_obj"].object_list) == 1
    assert "“From” must not be after “Until”." in reversed_.content.decode()
    assert malformed.status_code == 200 and malformed.context["filters"].errors


def test_pages_of_fifty_and_a_constant_number_of_queries(client, officer, practice, django_assert_max_num_queries):
    for i in range(120):
        security_event_record(kind="access_denied", reason=f"r{i}")
    total = AuditRecord.objects.count() + 1  # and the first read
    with django_assert_max_num_queries(14):
        first = client.get("/compliance/")
    with django_assert_max_num_queries(14):
        last = client.get("/compliance/", {"page": 3})

    assert len(first.context["page_obj"].object_list) == 50
    assert last.context["page_obj"].number == 3 and len(last.context["page_obj"].object_list) == total - 100
    assert f"Page 3 of {last.context['page_obj'].paginator.num_pages}" in last.content.decode()


def test_a_correlation_id_links_to_everything_it_caused(client, officer, trail):
    cid = "0f3c1f2a9b7e4c1d8a552d6e7f9a0b1c"
    other = AuditRead.objects.create(user=officer, what="trail", reason=REASON, correlation_id=cid)

    response = client.get("/compliance/", {"correlation_id": cid})

    assert [r.record_id for r in response.context["page_obj"].object_list] == [other.pk]


def test_logins_and_their_failures_are_in_the_trail(client, practice):
    client.post("/accounts/login/", {"username": "anna", "password": "wrong"})
    client.post("/accounts/login/", {"username": "anna", "password": "pw-for-tests"})

    events = list(SecurityEvent.objects.order_by("id").values_list("kind", "reason", "user__username", "path"))
    assert events == [
        ("login_failed", "bad_credentials", None, "/accounts/login/"),
        ("login", "password", "anna", "/accounts/login/"),
    ]
