"""Print the audit trail's chain head as JSON: keep it outside the database (see governance.audit_chain)."""

import json

from django.core.management.base import BaseCommand

from governance.audit_chain import head


class Command(BaseCommand):
    help = "Print the last seal of the audit trail's hash chain (seq, hash, time) as JSON, to keep elsewhere."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(head()))
