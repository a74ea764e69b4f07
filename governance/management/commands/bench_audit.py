"""python manage.py bench_audit [--writers 8] [--records 200] — the cost of sealing every audit record.

In a scratch database (created, migrated and dropped by the run; never the development one), `--writers`
threads each write `--records` security events, one transaction each, as concurrent refusals would: every
record is sealed into the audit chain under the chain's advisory lock (governance.audit_chain). Prints the
records written per second and the p50/p95 of one audited write, then `verify_audit`'s speed on that chain,
then the same writes with the chain's receivers disconnected: what sealing costs.
"""

import logging
import statistics
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.models.signals import post_save

from alfred.scratch_database import ScratchDatabase, ScratchDatabaseError
from governance import audit_chain
from governance.audit_chain import verify
from governance.services import security_event_record


class Command(BaseCommand):
    help = "Time audited writes (each sealed into the hash chain) by concurrent writers, and the chain's verification."

    def add_arguments(self, parser):
        parser.add_argument("--writers", type=int, default=8, help="concurrent writing threads")
        parser.add_argument("--records", type=int, default=200, help="records written by each writer")
        parser.add_argument("--bench-database", default="alfred_bench_audit", help="created and dropped by the run")

    def handle(self, *args, writers: int, records: int, bench_database: str, **options):
        if writers < 1 or records < 1 or not bench_database.startswith("alfred_bench"):
            raise CommandError("--writers and --records must be positive; --bench-database must start alfred_bench.")
        logging.getLogger("governance.services").setLevel(logging.ERROR)  # not one warning per refusal written
        scratch = ScratchDatabase(bench_database)
        try:
            scratch.create()
        except (ScratchDatabaseError, DatabaseError) as error:
            raise CommandError(f"The benchmark could not run: {error}") from error
        try:
            self._run(writers, records, label="sealed")
            self._verify()
            for model in audit_chain.CHAINED.values():
                post_save.disconnect(sender=model, dispatch_uid=f"governance.audit_chain.{model.__name__}")
            try:
                self._run(writers, records, label="without the chain (comparison)")
            finally:
                audit_chain.connect()
        finally:
            scratch.destroy()

    def _run(self, writers: int, records: int, *, label: str) -> None:
        latencies: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(writers)

        def write(number: int) -> None:
            barrier.wait()
            mine = []
            for i in range(records):
                started = time.perf_counter()
                security_event_record(kind="access_denied", reason=f"bench-{number}-{i}")
                mine.append(time.perf_counter() - started)
            connection.close()
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        total = writers * records
        cuts = statistics.quantiles(latencies, n=100)
        self.stdout.write(
            f"{label}: {writers} writers × {records} records = {total} records in {elapsed:.2f} s: "
            f"{total / elapsed:.0f} records/s; one audited write p50 {cuts[49] * 1000:.1f} ms, "
            f"p95 {cuts[94] * 1000:.1f} ms"
        )

    def _verify(self) -> None:
        started = time.perf_counter()
        report = verify()
        elapsed = time.perf_counter() - started
        verdict = "intact" if report.broken is None else f"BROKEN at {report.broken}"
        self.stdout.write(
            f"verify_audit: {report.checked} records in {elapsed:.2f} s ({report.checked / elapsed:.0f} records/s), "
            f"{verdict}"
        )
