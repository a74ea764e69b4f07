"""The audit trail's hash chain: every audit record sealed when written, `verify_audit` catching each kind of
tampering made in SQL (an edit, a delete, a reorder, an insert), a rewrite caught against an exported head,
concurrent writers that never fork the chain, and a trigger that keeps the application from changing a row."""

import json
import threading

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from governance.audit_chain import FIELDS, GENESIS, record_hash, seal_hash, verify
from governance.models import AuditSeal, SecurityEvent
from governance.services import security_event_record
from support.services.calendar_access import calendar_access_set

AUDIT_TABLES = ("auditlog_logentry", "governance_securityevent", "governance_auditseal")


def tampered(sql: str, params=()) -> None:
    """What a database administrator can do: switch the append-only trigger off, change rows, switch it on."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending: ALTER TABLE needs it
        for table in AUDIT_TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER alfred_audit_append_only")
        cursor.execute(sql, params)
        for table in AUDIT_TABLES:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER alfred_audit_append_only")


def verify_audit(*args) -> tuple[int, str]:
    """Run the command as an operator would: its exit status and what it wrote."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def trail(db, practice):
    """A few audited writes of both kinds: access changes (auditlog entries) and refusals (security events)."""
    for level in ("view", "book", "manage"):
        calendar_access_set(actor=practice.anna, calendar=practice.novak_main, user=practice.tomas, level=level)
    for reason in ("expired", "bad_signature"):
        security_event_record(kind="service_token_refused", reason=reason, path="/api/v1/calendars/")
    return practice


def test_every_audit_record_is_sealed_when_written_in_one_chain(trail):
    seals = list(AuditSeal.objects.order_by("seq"))

    assert [s.seq for s in seals] == list(range(1, len(seals) + 1))
    assert seals[0].previous == GENESIS
    assert all(b.previous == a.hash for a, b in zip(seals, seals[1:], strict=False))
    assert {(s.kind, s.record_id) for s in seals} == {
        ("logentry", pk) for pk in LogEntry.objects.values_list("pk", flat=True)
    } | {("securityevent", pk) for pk in SecurityEvent.objects.values_list("pk", flat=True)}
    last = seals[-1]
    assert last.hash == seal_hash(
        seq=last.seq, kind=last.kind, record_id=last.record_id, record=last.record_hash, previous=last.previous
    )
    assert verify_audit() == (
        0,
        f"Audit trail intact: {len(seals)} records chained; head seal {last.seq} {last.hash}.\n",
    )


def test_an_edited_record_is_named(trail):
    entry = LogEntry.objects.order_by("pk")[1]
    tampered("UPDATE auditlog_logentry SET changes = %s WHERE id = %s", ['{"level": ["view", "view"]}', entry.pk])

    status, message = verify_audit()

    seal = AuditSeal.objects.get(kind="logentry", record_id=entry.pk)
    assert status == 1
    assert f"seal {seal.seq}: logentry {entry.pk} was edited after it was written" in message


def test_a_deleted_record_is_named(trail):
    event = SecurityEvent.objects.order_by("pk").first()
    tampered("DELETE FROM governance_securityevent WHERE id = %s", [event.pk])

    status, message = verify_audit()

    assert status == 1 and f"securityevent {event.pk} was deleted" in message


def test_reordered_records_are_named(trail):
    first, second = AuditSeal.objects.order_by("seq")[1:3]
    tampered(  # swap two links of the chain: the trail now tells them in the other order
        "UPDATE governance_auditseal SET seq = 999999 WHERE seq = %(a)s;"
        "UPDATE governance_auditseal SET seq = %(a)s WHERE seq = %(b)s;"
        "UPDATE governance_auditseal SET seq = %(b)s WHERE seq = 999999;",
        {"a": first.seq, "b": second.seq},
    )

    status, message = verify_audit()

    assert status == 1 and f"seal {first.seq}: {second.kind} {second.record_id} is out of order" in message


def test_records_swapped_between_two_ids_are_named(trail):
    a, b = LogEntry.objects.order_by("pk").values_list("pk", flat=True)[:2]
    tampered(
        "UPDATE auditlog_logentry SET id = -1 WHERE id = %(a)s;"
        "UPDATE auditlog_logentry SET id = %(a)s WHERE id = %(b)s;"
        "UPDATE auditlog_logentry SET id = %(b)s WHERE id = -1;",
        {"a": a, "b": b},
    )

    status, message = verify_audit()

    assert status == 1 and f"logentry {a} was edited" in message


def test_a_record_inserted_in_sql_is_named(trail):
    with connection.cursor() as cursor:  # an INSERT needs no trigger switched off: only the seal is missing
        cursor.execute(
            "INSERT INTO governance_securityevent (created_at, kind, reason, detail, service, method, path,"
            " correlation_id) VALUES (now(), 'login_failed', 'planted', '', '', '', '', '') RETURNING id"
        )
        (planted,) = cursor.fetchone()

    status, message = verify_audit()

    assert status == 1 and f"no seal: securityevent {planted} was inserted outside the application" in message


def test_a_rewritten_chain_is_caught_against_the_exported_head(trail, tmp_path, capsys):
    call_command("audit_head")
    exported = tmp_path / "audit-heads.jsonl"
    exported.write_text(capsys.readouterr().out)
    # A superuser edits a record, then recomputes its seal and every seal after it.
    entry = LogEntry.objects.order_by("pk").first()
    tampered("UPDATE auditlog_logentry SET object_repr = 'nothing to see' WHERE id = %s", [entry.pk])
    previous = GENESIS
    for seal in AuditSeal.objects.order_by("seq"):
        row = (
            LogEntry.objects.filter(pk=seal.record_id).values(*FIELDS["logentry"]).first()
            if seal.kind == "logentry"
            else None
        )
        content = record_hash(row) if row else seal.record_hash
        digest = seal_hash(seq=seal.seq, kind=seal.kind, record_id=seal.record_id, record=content, previous=previous)
        tampered(
            "UPDATE governance_auditseal SET record_hash = %s, previous = %s, hash = %s WHERE seq = %s",
            [content, previous, digest, seal.seq],
        )
        previous = digest

    assert verify_audit()[0] == 0  # the chain alone cannot tell
    status, message = verify_audit("--head", str(exported))
    assert status == 1 and "does not match the exported chain head" in message


def test_an_unreadable_head_file_is_a_clear_error(trail, tmp_path):
    bad = tmp_path / "head.json"
    bad.write_text("not json")

    with pytest.raises(Exception, match="not a chain head exported by audit_head"):
        call_command("verify_audit", "--head", str(bad))


@pytest.mark.parametrize("change", ["update", "delete"])
def test_the_application_can_neither_change_nor_delete_an_audit_row(trail, change):
    edits = {LogEntry: {"cid": "x"}, SecurityEvent: {"reason": "nothing"}, AuditSeal: {"hash": "0" * 64}}

    for model, fields in edits.items():
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            if change == "update":
                model.objects.update(**fields)
            else:
                model.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_never_fork_the_chain():
    barrier = threading.Barrier(8)
    errors = []

    def writer(number: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                security_event_record(kind="access_denied", reason=f"writer-{number}-{i}")
        except Exception as error:  # noqa: BLE001 — any failure of a writer is reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seals = list(AuditSeal.objects.order_by("seq").values_list("seq", "previous", "hash"))
    assert [seq for seq, _, _ in seals] == list(range(1, 81))
    assert len({previous for _, previous, _ in seals}) == 80  # no two seals follow the same one: no fork
    report = verify()
    assert report.broken is None and report.checked == 80
    assert json.loads(json.dumps(report.head))["seq"] == 80
