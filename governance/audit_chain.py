"""The audit trail's hash chain: tamper evidence for every audit record.

Every audit record — django-auditlog's `LogEntry` (changes, proposal decisions), Alfred's `SecurityEvent`
(refusals, logins) and `AuditRead` (sensitive reads) — gets an `AuditSeal` when it is written, in the same transaction:

    record_hash = SHA-256 of the record's row, as the database returns it (canonical JSON)
    hash        = SHA-256 of "seq|kind|record_id|record_hash|previous"      previous = the last seal's hash

Seals are numbered 1, 2, 3… and each names the hash of the one before, so the seals form one chain. Writers
take a transaction-level advisory lock before reading the last seal, and `seq` and `previous` are unique:
concurrent writers queue, they can never fork the chain. The application never updates or deletes an audit
row or a seal; a database trigger refuses it (migration governance 0003), even to the admin.

`verify()` walks the chain and names the first broken record: a record edited (its hash differs), deleted
(its seal points at nothing), reordered (a seal out of sequence or not following its predecessor) or inserted
in SQL (a record without a seal). A database superuser can disable the trigger, rewrite rows and recompute
every hash: the chain head exported outside the database (`audit_head`, printed daily by a beat task) catches
that — `verify_audit --head FILE` checks that the chain still passes through the exported head.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from auditlog.models import LogEntry
from django.db import connection, transaction

from governance.models import AuditRead, AuditSeal, SecurityEvent

GENESIS = "0" * 64  # the "previous" hash of the first seal
LOCK_KEY = 0x414C4144  # pg_advisory_xact_lock key of the chain ("ALAD")
BATCH = 1000

CHAINED = {"logentry": LogEntry, "securityevent": SecurityEvent, "auditread": AuditRead}  # kind → model
# The columns a record's hash covers: a fixed list, so that a column added by a later migration (of Alfred or
# of django-auditlog) does not make every earlier record look edited. Extend it only with a new chain.
FIELDS = {
    "logentry": (
        "id", "content_type_id", "object_pk", "object_id", "object_repr", "serialized_data", "action",
        "changes_text", "changes", "actor_id", "actor_email", "cid", "remote_addr", "remote_port", "timestamp",
        "additional_data",
    ),
    "securityevent": (
        "id", "created_at", "kind", "reason", "detail", "service", "user_id", "method", "path", "remote_addr",
        "correlation_id",
    ),
    "auditread": (
        "id", "created_at", "user_id", "what", "target", "query", "reason", "correlation_id", "remote_addr",
    ),
}  # fmt: skip


def record_hash(row: dict) -> str:
    """The hash of one record's row (`.values(*FIELDS[kind])`): keys sorted, times as the database gives them."""
    text = json.dumps(row, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def seal_hash(*, seq: int, kind: str, record_id: int, record: str, previous: str) -> str:
    return hashlib.sha256(f"{seq}|{kind}|{record_id}|{record}|{previous}".encode()).hexdigest()


def seal(kind: str, record_id: int) -> AuditSeal:
    """Chain one record just written (called from its post_save, inside the writer's transaction).

    The lock is held until the writer's transaction ends, so the next writer reads this seal as the last.
    """
    model = CHAINED[kind]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        row = model.objects.filter(pk=record_id).values(*FIELDS[kind]).get()
        last = AuditSeal.objects.order_by("-seq").values("seq", "hash").first()
        seq, previous = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
        content = record_hash(row)
        return AuditSeal.objects.create(
            seq=seq,
            kind=kind,
            record_id=record_id,
            record_hash=content,
            previous=previous,
            hash=seal_hash(seq=seq, kind=kind, record_id=record_id, record=content, previous=previous),
        )


def on_record_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        seal(KIND_OF[sender], instance.pk)


KIND_OF = {model: kind for kind, model in CHAINED.items()}


def connect() -> None:
    from django.db.models.signals import post_save

    for model in CHAINED.values():
        post_save.connect(on_record_saved, sender=model, dispatch_uid=f"governance.audit_chain.{model.__name__}")


def head() -> dict:
    """The chain's last seal: what to keep outside the database ({"seq": 0} for an empty chain)."""
    last = AuditSeal.objects.order_by("-seq").first()
    if last is None:
        return {"seq": 0, "hash": GENESIS, "sealed_at": None}
    return {"seq": last.seq, "hash": last.hash, "sealed_at": last.sealed_at.isoformat()}


@dataclass(frozen=True)
class Break:
    """The first place where the trail is not what was written."""

    seq: int | None  # the seal where it breaks (None: a record with no seal at all)
    kind: str
    record_id: int | None
    problem: str  # edited | deleted | reordered | inserted | seal_edited | head_mismatch

    def __str__(self) -> str:
        where = f"seal {self.seq}" if self.seq is not None else "no seal"
        record = f"{self.kind} {self.record_id}" if self.record_id is not None else self.kind
        return f"{where}: {record} {PROBLEMS[self.problem]}"


PROBLEMS = {
    "edited": "was edited after it was written (its content no longer matches its seal)",
    "deleted": "was deleted (its seal points at no record)",
    "reordered": "is out of order (its seal does not follow the one before)",
    "inserted": "was inserted outside the application (it has no seal)",
    "seal_edited": "has a seal that was edited (its hash does not match its content)",
    "head_mismatch": "does not match the exported chain head (the chain was rewritten)",
}


@dataclass
class Report:
    checked: int
    head: dict
    broken: Break | None


def verify(*, expected_head: dict | None = None, on_progress=None) -> Report:
    """Walk the whole chain; the first break found, or None. `expected_head` ({"seq", "hash"}) is a head
    exported earlier: the chain must still hold that hash at that position."""
    expected_seq, previous, checked = 1, GENESIS, 0
    for seals in _batches():
        rows = {kind: _rows(kind, [s.record_id for s in seals if s.kind == kind]) for kind in CHAINED}
        for s in seals:
            if s.seq != expected_seq or s.previous != previous:
                return Report(checked, head(), Break(s.seq, s.kind, s.record_id, "reordered"))
            recomputed = seal_hash(
                seq=s.seq, kind=s.kind, record_id=s.record_id, record=s.record_hash, previous=s.previous
            )
            if s.hash != recomputed or s.kind not in CHAINED:
                return Report(checked, head(), Break(s.seq, s.kind, s.record_id, "seal_edited"))
            row = rows[s.kind].get(s.record_id)
            if row is None:
                return Report(checked, head(), Break(s.seq, s.kind, s.record_id, "deleted"))
            if record_hash(row) != s.record_hash:
                return Report(checked, head(), Break(s.seq, s.kind, s.record_id, "edited"))
            if expected_head and s.seq == expected_head["seq"] and s.hash != expected_head["hash"]:
                return Report(checked, head(), Break(s.seq, s.kind, s.record_id, "head_mismatch"))
            expected_seq, previous, checked = s.seq + 1, s.hash, checked + 1
        if on_progress:
            on_progress(checked)
    if expected_head and expected_head["seq"] >= expected_seq:  # the chain is shorter than what was exported
        return Report(checked, head(), Break(expected_head["seq"], "chain", None, "head_mismatch"))
    for kind, model in CHAINED.items():
        seals = AuditSeal.objects.filter(kind=kind).values("record_id")
        unsealed = model.objects.exclude(pk__in=seals).order_by("pk").values_list("pk", flat=True).first()
        if unsealed is not None:
            return Report(checked, head(), Break(None, kind, unsealed, "inserted"))
    return Report(checked, head(), None)


def _batches() -> Iterator[list[AuditSeal]]:
    after = 0
    while True:
        seals = list(AuditSeal.objects.filter(seq__gt=after).order_by("seq")[:BATCH])
        if not seals:
            return
        yield seals
        after = seals[-1].seq


def _rows(kind: str, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    return {row["id"]: row for row in CHAINED[kind].objects.filter(pk__in=ids).values(*FIELDS[kind])}
