"""The audit pages of the admin show every time in one zone (TIME_ZONE, named) and in one format."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils.timezone import localtime

from governance.audit import audit_update
from tests.support.console_data import conversation_of, proposal_in

pytestmark = pytest.mark.django_db

RAW_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d")  # a stored time shown as is (UTC, or an offset)


@pytest.fixture
def admin_client(client, django_user_model, settings):
    settings.TIME_ZONE = "Europe/Paris"
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.org", "pw"))
    return client


def test_an_entry_and_the_times_it_changed_are_shown_in_one_zone(admin_client, practice):
    proposal = proposal_in(
        conversation_of(practice.anna), calendar=practice.novak_main, member=practice.tomas, level="book", before=None
    )
    executed = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)  # summer: 14:30 in Paris
    entry = audit_update(proposal, actor=practice.anna, changes={"executed_at": (None, executed)})
    # Audit rows are append-only: the entry's own time is now, shown in Paris time, named.
    written = localtime(entry.timestamp, ZoneInfo("Europe/Paris"))
    shown = f"{written.day} {written:%b %Y, %H:%M:%S} {written.tzname()}"

    page = admin_client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").content.decode()
    listing = admin_client.get("/admin/auditlog/logentry/").content.decode()

    assert shown in page and shown in listing
    assert "1 Jul 2026, 14:30:00 CEST" in page
    assert not RAW_TIME.search(page.split('id="content"')[1])


def test_security_events_are_listed_in_the_same_zone_with_their_correlation_id(admin_client, api_refusal):
    listing = admin_client.get("/admin/governance/securityevent/").content.decode()

    assert re.search(r"\d+ \w{3} \d{4}, \d\d:\d\d:\d\d CE(S)?T", listing)
    assert api_refusal["X-Request-ID"] in listing


@pytest.fixture
def api_refusal(client):
    from rest_framework.test import APIClient

    return APIClient().get("/api/v1/calendars/", headers={"Authorization": "Bearer nope", "X-User-Token": "x"})
