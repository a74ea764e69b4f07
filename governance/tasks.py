"""Governance tasks: exports of the audit trail, and the daily export of the audit chain head (run by Celery
beat; `make run` embeds beat)."""

import json
import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings

from governance.audit_chain import head
from governance.exports import audit_export_run

logger = logging.getLogger(__name__)


@shared_task(name="governance.audit_head_export")
def audit_head_export() -> dict:
    """Log the chain head and, with `AUDIT_HEAD_DIR` set, append it to `audit-heads.jsonl` there.

    The head is worth something only outside the database: ship this log line (or the file, on storage the
    database's administrators cannot write) to where a rewrite of the trail cannot reach it. `verify_audit
    --head FILE` then checks the chain against it."""
    current = head()
    logger.info("audit chain head %s", json.dumps(current))
    if settings.AUDIT_HEAD_DIR:
        directory = Path(settings.AUDIT_HEAD_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "audit-heads.jsonl").open("a", encoding="utf-8") as file:
            file.write(json.dumps(current) + "\n")
    return current


@shared_task(name="governance.audit_export_run")
def audit_export_run_task(export_id: int) -> None:
    """Write one export of the audit trail (progress counted on the export, shown by the console)."""
    audit_export_run(export_id)
