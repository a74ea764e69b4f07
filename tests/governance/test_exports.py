"""Exports of the audit trail: CSV, JSON and FHIR R4 AuditEvents in a Bundle, of a filtered view, written by a
task that counts its progress; asking for one and downloading it are audited reads."""

import csv
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from governance.exports import audit_export_request, audit_export_run
from governance.models import AuditExport, AuditRead, AuditRecord
from governance.services import security_event_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REASON = "Incident 2026-114"


@pytest.fixture(autouse=True)
def exports_dir(settings, tmp_path):
    settings.EXPORTS_DIR = tmp_path / "exports"
    return settings.EXPORTS_DIR


@pytest.fixture
def officer():
    return UserFactory(username="camille", first_name="Camille", last_name="Roux", platform_role="compliance")


def export(officer, format: str, query: dict, django_capture_on_commit_callbacks) -> AuditExport:  # noqa: A002
    with django_capture_on_commit_callbacks(execute=False) as queued:
        requested = audit_export_request(user=officer, format=format, query=query, reason=REASON)
    assert len(queued) == 1  # the task is queued once the request is committed
    return audit_export_run(requested.pk)


def test_asking_for_an_export_is_an_audited_read(officer, trail, django_capture_on_commit_callbacks):
    done = export(officer, "csv", {"kind": "change"}, django_capture_on_commit_callbacks)

    read = AuditRead.objects.get(what="export")
    assert (read.user, read.reason, read.query) == (officer, REASON, {"kind": "change"})
    assert read.target == f"export {done.pk} (csv)"


def test_csv_of_a_filtered_view_with_progress_counted(officer, trail, django_capture_on_commit_callbacks):
    done = export(
        officer, "csv", {"kind": "change", "organization": str(trail.org.pk)}, django_capture_on_commit_callbacks
    )

    expected = AuditRecord.objects.filter(kind="change", organization=trail.org).count()
    assert (done.status, done.total, done.done) == ("done", expected, expected) and expected >= 2
    rows = list(csv.DictReader(Path(done.path).read_text(encoding="utf-8").splitlines()))
    assert len(rows) == expected
    grant = next(row for row in rows if row["object_type"] == "support.calendaraccess" and row["action"] == "create")
    assert (grant["actor"], grant["service"], grant["practice"]) == ("anna", "agents", "Harbour Dental Practice")
    assert grant["seq"] and grant["correlation_id"] == ""  # written outside any request


def test_csv_cells_cannot_run_as_formulas(officer, trail, django_capture_on_commit_callbacks):
    security_event_record(kind="access_denied", reason='=HYPERLINK("http://evil")')

    done = export(officer, "csv", {"kind": "security"}, django_capture_on_commit_callbacks)

    summaries = [row["summary"] for row in csv.DictReader(Path(done.path).read_text(encoding="utf-8").splitlines())]
    assert '\'=HYPERLINK("http://evil")' in summaries


def test_json_holds_the_same_records(officer, trail, django_capture_on_commit_callbacks):
    done = export(officer, "json", {"actor": "ben"}, django_capture_on_commit_callbacks)

    data = json.loads(Path(done.path).read_text(encoding="utf-8"))
    assert [(row["kind"], row["action"], row["actor"]) for row in data] == [("change", "delete", "ben")]


def test_fhir_bundle_of_valid_audit_events_following_balp(officer, trail, django_capture_on_commit_callbacks):
    done = export(officer, "fhir", {}, django_capture_on_commit_callbacks)

    bundle = Bundle.model_validate_json(Path(done.path).read_text(encoding="utf-8"))
    assert bundle.type == "collection" and len(bundle.entry) == done.total == done.done
    events = [AuditEvent.model_validate(entry.resource.model_dump()) for entry in bundle.entry]
    for event in events:  # the elements R4 requires, and BALP's requestor and observer
        assert event.type.code and event.recorded and event.source.observer.display == "Alfred"
        assert event.action in ("C", "R", "U", "D", "E") and event.outcome in ("0", "4", "8", "12")
        assert sum(agent.requestor for agent in event.agent) == 1
    record = AuditRecord.objects.get(object_type="support.calendaraccess", action="create", actor=trail.anna)
    grant = next(e for e in events if e.id == record.uid.replace(":", "-"))
    assert (grant.type.code, grant.action, grant.outcome) == ("rest", "C", "0")
    assert grant.agent[0].who.identifier.value == "anna" and grant.agent[1].who.display == "agents"
    assert grant.entity[0].what.identifier.value.startswith("support.calendaraccess:")
    refusal = next(e for e in events if e.type.code == "110113")
    assert (refusal.action, refusal.outcome) == ("E", "4")


def test_a_failed_export_says_why_and_leaves_no_file(
    officer, trail, django_capture_on_commit_callbacks, monkeypatch, exports_dir
):
    monkeypatch.setattr("governance.exports.audit_event", lambda record: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        export(officer, "fhir", {}, django_capture_on_commit_callbacks)

    failed = AuditExport.objects.get()
    assert failed.status == "failed" and "division by zero" in failed.error
    assert failed.path == "" and list(Path(exports_dir).glob("audit-*")) == []  # the half-written file is removed


def test_a_task_delivered_twice_writes_once(officer, trail, django_capture_on_commit_callbacks):
    done = export(officer, "json", {}, django_capture_on_commit_callbacks)
    again = audit_export_run(done.pk)

    assert again.status == "done" and again.finished_at == done.finished_at


def test_a_login_and_a_failed_one_as_fhir_user_authentication_events(practice, client):
    from governance.fhir import audit_event

    client.post("/accounts/login/", {"username": "anna", "password": "wrong"})
    client.post("/accounts/login/", {"username": "anna", "password": "pw-for-tests"})

    failed, success = (audit_event(r) for r in AuditRecord.objects.filter(kind="security").order_by("at", "uid"))
    assert (failed.type.code, failed.outcome) == ("110114", "4")
    assert (success.type.code, success.outcome) == ("110114", "0")
    assert success.agent[0].who.identifier.value == "anna"
