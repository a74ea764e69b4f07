"""Check the audit trail's hash chain (governance.audit_chain): exit 0 when intact, 1 naming the first break."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from governance.audit_chain import verify


class Command(BaseCommand):
    help = (
        "Walk the audit trail's hash chain and name the first record that was edited, deleted, reordered or "
        "inserted outside Alfred. Exit status 0: intact; 1: broken."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--head",
            metavar="FILE",
            help="a chain head exported earlier by audit_head (JSON): the chain must still pass through it",
        )

    def handle(self, *args, head: str | None = None, **options):
        expected = _read_head(head) if head else None
        report = verify(expected_head=expected, on_progress=self._progress)
        if report.broken is not None:
            self.stderr.write(f"Audit trail BROKEN at {report.broken}. {report.checked} records verified before it.")
            sys.exit(1)
        at = f", through the exported head at seal {expected['seq']}" if expected else ""
        self.stdout.write(
            f"Audit trail intact: {report.checked} records chained{at}; head seal {report.head['seq']} "
            f"{report.head['hash']}."
        )

    def _progress(self, checked: int) -> None:
        if self.stdout.isatty():
            self.stdout.write(f"\r{checked} records verified…", ending="")


def _read_head(path: str) -> dict:
    """A JSON head, or the last line of a file of heads (`audit-heads.jsonl`, one a day)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
        try:
            data = json.loads(text)
        except ValueError:
            data = json.loads([line for line in text.splitlines() if line.strip()][-1])
        return {"seq": int(data["seq"]), "hash": str(data["hash"])}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise CommandError(f"{path}: not a chain head exported by audit_head ({error}).") from error
