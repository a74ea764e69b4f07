"""Exports of the audit trail: CSV, JSON, or FHIR R4 AuditEvents in a Bundle, of any filtered view.

An export is asked for in the compliance console (`audit_export_request`: the request itself is an audited read,
with the officer's reason) and written by a worker (`audit_export_run`, the task `governance.audit_export_run`),
which counts its progress so the console can show it. The file lands in `EXPORTS_DIR`; downloading it is
another audited read.
"""

import csv
import json
import logging
from datetime import date
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.fhir import audit_event
from governance.models import AuditExport, AuditRead
from governance.selectors import audit_records
from governance.services import audit_read_record

logger = logging.getLogger(__name__)

COLUMNS = (
    "seq", "recorded", "kind", "action", "actor", "actor_name", "service", "object_type", "object_id", "summary",
    "practice_id", "practice", "correlation_id",
)  # fmt: skip
PROGRESS_EVERY = 200
CONTENT_TYPES = {"csv": "text/csv", "json": "application/json", "fhir": "application/fhir+json"}
EXTENSIONS = {"csv": "csv", "json": "json", "fhir": "fhir.json"}


def filters_from_query(query: dict) -> dict:
    """The selector's filters from an export's stored query (strings, as the console's form gave them)."""
    filters = dict(query)
    for name in ("since", "until"):
        if filters.get(name):
            filters[name] = date.fromisoformat(filters[name])
    if filters.get("organization"):
        filters["organization"] = int(filters["organization"])
    return filters


def audit_export_request(*, user, format: str, query: dict, reason: str, remote_addr=None) -> AuditExport:  # noqa: A002
    """Queue an export of the trail as filtered by `query`; the request is recorded as a read of the trail."""
    from governance.tasks import audit_export_run_task

    with transaction.atomic():
        export = AuditExport.objects.create(requested_by=user, format=format, query=query, reason=reason)
        audit_read_record(
            user=user,
            what=AuditRead.What.EXPORT,
            reason=reason,
            target=f"export {export.pk} ({format})",
            query=query,
            remote_addr=remote_addr,
        )
        transaction.on_commit(lambda: audit_export_run_task.delay(export.pk))
    return export


def audit_export_run(export_id: int) -> AuditExport:
    """Write the export's file, counting progress; a failure is kept on the export with its reason."""
    export = AuditExport.objects.get(pk=export_id)
    if export.status != AuditExport.Status.QUEUED:
        return export  # a task delivered twice
    records = audit_records(**filters_from_query(export.query)).order_by("at", "uid")
    AuditExport.objects.filter(pk=export.pk).update(status=AuditExport.Status.RUNNING, total=records.count())
    path = Path(settings.EXPORTS_DIR) / f"audit-{export.pk}.{EXTENSIONS[export.format]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as file:
            written = _write(export, records, file)
    except Exception as error:
        logger.exception("audit export %s failed", export.pk)
        path.unlink(missing_ok=True)
        AuditExport.objects.filter(pk=export.pk).update(
            status=AuditExport.Status.FAILED, error=str(error)[:1000], finished_at=timezone.now()
        )
        raise
    AuditExport.objects.filter(pk=export.pk).update(
        status=AuditExport.Status.DONE, done=written, path=str(path), finished_at=timezone.now()
    )
    export.refresh_from_db()
    return export


def audit_export_download_record(*, export: AuditExport, user, reason: str, remote_addr=None) -> None:
    audit_read_record(
        user=user,
        what=AuditRead.What.EXPORT,
        reason=reason,
        target=f"download of export {export.pk} ({export.format})",
        remote_addr=remote_addr,
    )


def _write(export: AuditExport, records, file) -> int:
    rows = records.iterator(chunk_size=PROGRESS_EVERY)
    written = 0

    def progressed(count: int) -> None:
        if count % PROGRESS_EVERY == 0:
            AuditExport.objects.filter(pk=export.pk).update(done=count)

    if export.format == "csv":
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for record in rows:
            writer.writerow([_safe_cell(value) for value in _row(record).values()])
            written += 1
            progressed(written)
    elif export.format == "json":
        file.write("[")
        for record in rows:
            file.write(("," if written else "") + "\n" + json.dumps(_row(record), ensure_ascii=False))
            written += 1
            progressed(written)
        file.write("\n]\n")
    else:  # fhir: a Bundle of type collection, written entry by entry (each AuditEvent validated as it is made)
        file.write('{"resourceType": "Bundle", "type": "collection", "entry": [')
        for record in rows:
            resource = audit_event(record).model_dump_json(exclude_none=True)
            file.write(("," if written else "") + '\n{"resource": ' + resource + "}")
            written += 1
            progressed(written)
        file.write("\n]}\n")
    return written


def _row(record) -> dict:
    return {
        "seq": record.seq,
        "recorded": timezone.localtime(record.at).isoformat(),
        "kind": record.kind,
        "action": record.action,
        "actor": record.actor.username if record.actor_id else "",
        "actor_name": record.actor.display_name if record.actor_id else "",
        "service": record.service,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "summary": record.summary,
        "practice_id": record.organization_id,
        "practice": record.organization.name if record.organization_id else "",
        "correlation_id": record.correlation_id,
    }


def _safe_cell(value):
    """A spreadsheet must not run what a record says: text starting with = + - @ (or a tab, a carriage return)
    is quoted with a leading apostrophe (OWASP CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
