"""python manage.py bench_retrieval [--chunks 100000] [--queries 200] [--json OUT.json] — hybrid search, timed.

Builds a synthetic corpus in a scratch database (never the development one; dropped at the end), builds
the indexes, and reports the build time, p50/p95 of the hybrid query and recall@10 of its vector leg
(see knowledge/benchmark.py and docs/performance.md, "Retrieval benchmark").
"""

import json
import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from alfred.scratch_database import ScratchDatabaseError
from knowledge import benchmark

# The benchmark database is dropped and re-created: its name can never be the one of a database in use.
BENCH_DATABASE_NAME = re.compile(r"alfred_bench[a-z0-9_]{0,40}")


class Command(BaseCommand):
    help = "Time hybrid retrieval and measure HNSW recall on a synthetic corpus, in a database of its own."

    def add_arguments(self, parser):
        defaults = benchmark.Parameters()
        parser.add_argument("--chunks", type=int, default=defaults.chunks, help="chunks in the corpus")
        parser.add_argument("--queries", type=int, default=defaults.queries, help="timed queries (after a warm-up)")
        parser.add_argument("--m", type=int, default=defaults.m, help="HNSW m (links per node)")
        parser.add_argument("--ef-construction", type=int, default=defaults.ef_construction, help="HNSW build list")
        parser.add_argument(
            "--ef-search", type=int, default=settings.KNOWLEDGE_EF_SEARCH, help="hnsw.ef_search (KNOWLEDGE_EF_SEARCH)"
        )
        parser.add_argument(
            "--candidates",
            type=int,
            default=settings.KNOWLEDGE_CANDIDATES,
            help="neighbours and text matches fused per query (KNOWLEDGE_CANDIDATES)",
        )
        parser.add_argument(
            "--maintenance-work-mem", default=defaults.maintenance_work_mem, help="for the index builds"
        )
        parser.add_argument(
            "--parallel-workers",
            type=int,
            default=defaults.parallel_workers,
            help="max_parallel_maintenance_workers for the index builds",
        )
        parser.add_argument("--seed", type=int, default=defaults.seed, help="the corpus and the questions")
        parser.add_argument("--json", dest="json_out", metavar="OUT.json", help="write the figures here")
        parser.add_argument(
            "--bench-database",
            default=benchmark.DEFAULT_DATABASE,
            help=f"created and dropped by the run: alfred_bench… (default {benchmark.DEFAULT_DATABASE})",
        )

    def handle(self, *args, **options):
        if not BENCH_DATABASE_NAME.fullmatch(options["bench_database"]):
            raise CommandError("--bench-database must start with alfred_bench (lower-case letters, digits, _).")
        if options["chunks"] < 100 or options["queries"] < 1:
            raise CommandError("--chunks must be at least 100 and --queries at least 1.")
        parameters = benchmark.Parameters(
            chunks=options["chunks"],
            queries=options["queries"],
            m=options["m"],
            ef_construction=options["ef_construction"],
            ef_search=options["ef_search"],
            candidates=options["candidates"],
            maintenance_work_mem=options["maintenance_work_mem"],
            parallel_workers=options["parallel_workers"],
            seed=options["seed"],
        )
        try:
            result = benchmark.run(parameters, database=options["bench_database"], progress=self._progress)
        except (ScratchDatabaseError, DatabaseError) as error:
            raise CommandError(f"The benchmark could not run: {error}") from error
        self.stdout.write("\n" + benchmark.report_table(result))
        if options["json_out"]:
            path = Path(options["json_out"])
            path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            self.stdout.write(f"Written to {path}")

    def _progress(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()
