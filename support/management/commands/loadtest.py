"""Load-test the chat: N WebSockets, R turns/s for S seconds, through a whole Alfred and a scripted model.

    python manage.py loadtest --connections 200 --rate 20 --duration 30 --json var/loadtest.json

Self-contained by default: a scripted OpenAI-compatible server in this process (`--llm-delay-ms`,
`--llm-token-delay-ms`, `--llm-tokens`), `--asgi-processes` daphne servers and `--workers` Celery
workers (`--worker-concurrency`, `--worker-pool`) on an isolated database (`--db-name`, created fresh
and migrated) and an isolated Redis database (`--redis-db`), N users of one practice with sessions.
With `--url`, the load goes to an Alfred that is already running (docs/performance.md says how to
configure it). Prints the figures and writes them with `--json`. Everything it started is stopped at
the end, on Ctrl-C or SIGTERM too. The figures and what dominates them: docs/performance.md.
"""

import asyncio
import json
import os
import platform
import signal
import subprocess
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from agents.scripted_llm import long_text
from alfred.env import redis_url_with_db
from support.loadtest.clients import MESSAGE, LoadRun, figures
from support.loadtest.cpu import CpuSampler
from support.loadtest.model import TRIAGE_ARGUMENTS, LoadTestLLMServer, ModelLedger
from support.loadtest.stack import (
    IsolatedDatabase,
    Processes,
    create_accounts,
    delete_sessions,
    redis_flush,
)

REPLY_PREFIX = "Scripted reply"  # the scripted model's default text: the turn's reply came from the model


class Command(BaseCommand):
    help = "Load-test the chat over WebSockets through a whole Alfred with a scripted model; print the figures."

    def add_arguments(self, parser):
        load = parser.add_argument_group("load")
        load.add_argument("--connections", type=int, default=20, help="WebSocket clients, each its own user")
        load.add_argument("--rate", type=float, default=2.0, help="turns per second, all connections together")
        load.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
        load.add_argument("--arrival", choices=["poisson", "fixed"], default="poisson")
        load.add_argument("--seed", type=int, default=1, help="of the Poisson schedule and the connection choice")
        load.add_argument("--turn-timeout", type=float, default=30.0, help="seconds before a turn counts as lost")
        load.add_argument(
            "--warmup",
            type=int,
            default=None,
            help="turns sent at once before the measured window, not counted (default: 2 per worker process; "
            "with --url 0)",
        )
        load.add_argument("--json", dest="json_path", help="also write the report to this file")
        model = parser.add_argument_group("scripted model")
        model.add_argument("--llm-delay-ms", type=float, default=100.0, help="before the first byte of each call")
        model.add_argument("--llm-token-delay-ms", type=float, default=0.0, help="between two streamed chunks")
        model.add_argument("--llm-tokens", type=int, default=40, help="length of the streamed reply")
        model.add_argument("--llm-host", default="127.0.0.1")
        model.add_argument("--llm-port", type=int, default=None, help="default: a free port (8011 with --url)")
        stack = parser.add_argument_group("the Alfred it starts (ignored with --url)")
        stack.add_argument("--asgi-processes", type=int, default=1, help="daphne servers; clients spread over them")
        stack.add_argument("--workers", type=int, default=1, help="Celery worker processes")
        stack.add_argument("--worker-concurrency", type=int, default=2, help="--concurrency of each worker")
        stack.add_argument("--worker-pool", choices=["prefork", "solo", "threads"], default="prefork")
        stack.add_argument(
            "--worker-arg", action="append", default=[], help="one more argument for `celery worker` (repeatable)"
        )
        stack.add_argument(
            "--child-env",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="one more environment variable for the children (repeatable)",
        )
        stack.add_argument("--db-name", default="alfred_loadtest", help="the isolated database (dropped, created)")
        stack.add_argument("--keep-db", action="store_true", help="keep the isolated database for inspection")
        stack.add_argument("--redis-db", type=int, default=14, help="the isolated Redis database number")
        stack.add_argument("--log-dir", default=None, help="children's logs (default var/loadtest/logs)")
        parser.add_argument("--url", help="target a running Alfred (comma-separate several ASGI servers)")

    def handle(self, *args, **options):
        self._check(options)
        interrupted = []

        def on_term(signum, frame):
            interrupted.append(signum)
            raise KeyboardInterrupt

        in_main_thread = threading.current_thread() is threading.main_thread()  # signals can only be set there
        previous = signal.signal(signal.SIGTERM, on_term) if in_main_thread else None
        ledger = ModelLedger(
            delay=options["llm_delay_ms"] / 1000,
            token_delay=options["llm_token_delay_ms"] / 1000,
            tokens=options["llm_tokens"],
        )
        port = options["llm_port"] if options["llm_port"] is not None else (8011 if options["url"] else 0)
        server = LoadTestLLMServer(ledger.script, host=options["llm_host"], port=port)
        database = processes = redis_url = None
        accounts = []
        try:
            llm_url = server.start()
            self._say(f"scripted model on {llm_url}/v1")
            if options["url"]:
                urls = [url.strip().rstrip("/") for url in options["url"].split(",") if url.strip()]
                accounts = create_accounts(options["connections"])
            else:
                redis_url = redis_url_with_db(settings.REDIS_URL, options["redis_db"])
                if redis_url == settings.REDIS_URL:
                    raise CommandError("--redis-db must not be the configured Redis database")
                redis_flush(redis_url)
                database = IsolatedDatabase(options["db_name"], keep=options["keep_db"])
                database.start(log=self._say)
                accounts = create_accounts(options["connections"])
                self._say(f"{len(accounts)} users with sessions in one practice")
                processes = Processes(
                    env=self._child_env(options, database, redis_url, llm_url), log_dir=self._log_dir(options)
                )
                started = time.monotonic()
                urls = processes.start_asgi(options["asgi_processes"])
                processes.start_workers(
                    options["workers"],
                    concurrency=options["worker_concurrency"],
                    pool=options["worker_pool"],
                    env={},
                    extra_args=options["worker_arg"],
                )
                self._say(
                    f"{len(urls)} daphne + {options['workers']} worker(s) ready in "
                    f"{time.monotonic() - started:.1f} s (logs in {processes.log_dir})"
                )
            groups = processes.pid_groups() if processes is not None else {}
            cpu = CpuSampler.for_embedded(groups)
            measured: dict = {"loadavg": os.getloadavg()}

            connections["default"].close()  # its backend reports its counters (the setup's) as it ends

            def on_sending():
                if database is not None:
                    measured["db_before"] = database.activity(settle=0)
                cpu.start()

            def on_drained():
                measured["cpu"] = cpu.stop()

            run = LoadRun(
                urls=urls,
                accounts=accounts,
                rate=options["rate"],
                duration=options["duration"],
                arrival=options["arrival"],
                seed=options["seed"],
                turn_timeout=options["turn_timeout"],
                cookie_name=settings.SESSION_COOKIE_NAME,
                expect_reply_prefix=REPLY_PREFIX,
                warmup=self._warmup(options),
                log=self._say,
                on_sending=on_sending,
                on_drained=on_drained,
            )
            result = asyncio.run(run.run())
            report = {**figures(result, ledger), "cpu": measured.get("cpu"), "config": self._config(options, urls)}
            report["config"]["machine"]["loadavg_before"] = [round(x, 2) for x in measured["loadavg"]]
            report["model_calls_unattributed"] = ledger.unmarked_calls
            if processes is not None:
                report["child_log_problems"] = processes.log_problems()
                processes.stop()  # their database sessions end: their counters are reported
                report["postgres"] = self._per_turn(measured.get("db_before"), database, report["turns_completed"])
        except KeyboardInterrupt:
            raise CommandError("interrupted: everything it started is stopped") from None
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
            self._cleanup(processes, server, accounts, database, redis_url, url_mode=bool(options["url"]))
        self._print(report)
        if options["json_path"]:
            path = Path(options["json_path"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2) + "\n")
            self._say(f"report written to {path}")
        return None

    # --- helpers -------------------------------------------------------------------------------------------

    def _check(self, options) -> None:
        if options["connections"] < 1 or options["rate"] <= 0 or options["duration"] <= 0:
            raise CommandError("--connections, --rate and --duration must be positive")
        if options["connections"] > 5000 or options["rate"] * options["duration"] > 100_000:
            raise CommandError("at most 5000 connections and 100000 turns per run")
        if min(options["asgi_processes"], options["workers"], options["worker_concurrency"]) < 1:
            raise CommandError("--asgi-processes, --workers and --worker-concurrency must be at least 1")
        for item in options["child_env"]:
            if "=" not in item:
                raise CommandError(f"--child-env wants NAME=VALUE, got {item!r}")

    def _warmup(self, options) -> int:
        if options["warmup"] is not None:
            return max(0, options["warmup"])
        if options["url"]:
            return 0
        processes = options["workers"] * (1 if options["worker_pool"] == "solo" else options["worker_concurrency"])
        return 2 * processes

    def _say(self, text: str) -> None:
        self.stdout.write(f"[loadtest] {text}")
        self.stdout.flush()

    def _log_dir(self, options) -> Path:
        if options["log_dir"]:
            return Path(options["log_dir"])
        return Path(settings.VAR_DIR) / "loadtest" / "logs"

    def _child_env(self, options, database: IsolatedDatabase, redis_url: str, llm_url: str) -> dict:
        env = {
            **os.environ,
            **database.child_env(),
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "alfred.settings"),
            "REDIS_URL": redis_url,
            "REDIS_URL_FILE": "",
            "TEST_REDIS_URL": redis_url,  # alfred.test_settings reads this one
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "LLM_PROVIDER": "openai",
            "LLM_BASE_URL": f"{llm_url}/v1",
            "LLM_MODEL": "scripted-model",
            "LLM_API_KEY": "loadtest",
            "LLM_API_KEY_FILE": "",
            "LLM_MAX_RETRIES": "0",  # a failed call shows as an error, not as a slow turn
        }
        env.update(item.split("=", 1) for item in options["child_env"])
        return env

    def _config(self, options, urls: list[str]) -> dict:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=settings.BASE_DIR,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        config = {
            key: options[key]
            for key in (
                "connections",
                "rate",
                "duration",
                "arrival",
                "seed",
                "turn_timeout",
                "warmup",
                "llm_delay_ms",
                "llm_token_delay_ms",
                "llm_tokens",
            )
        }
        config.update(
            turn="refusal: triage (tool call, intent other) then a streamed reply of llm_tokens tokens",
            message=MESSAGE,
            triage_arguments=TRIAGE_ARGUMENTS,
            reply=long_text(options["llm_tokens"])[:60] + "…",
            url=options["url"],
            asgi_urls=urls,
            machine={"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            commit=commit,
        )
        config["warmup"] = self._warmup(options)
        if not options["url"]:
            config.update(
                {
                    key: options[key]
                    for key in ("asgi_processes", "workers", "worker_concurrency", "worker_pool", "worker_arg")
                },
                child_env=options["child_env"],
                db_name=options["db_name"],
                redis_db=options["redis_db"],
            )
        return config

    def _per_turn(self, before: dict | None, database, turns: int) -> dict | None:
        """The isolated database's work per completed turn, from the first message until the children
        stopped (so it includes what the turns that did not complete cost)."""
        after = database.activity(settle=5.0) if database is not None else None
        if not before or not after or not turns:
            return None
        delta = {key: after[key] - before[key] for key in before}
        return {
            "transactions_per_turn": round((delta["xact_commit"] + delta["xact_rollback"]) / turns, 1),
            "new_sessions_per_turn": round(delta["sessions"] / turns, 2),
            "statement_ms_per_turn": round(delta["active_time"] / turns, 1),
            "rows_written_per_turn": round((delta["tup_inserted"] + delta["tup_updated"]) / turns, 1),
        }

    def _cleanup(self, processes, server, accounts, database, redis_url, *, url_mode: bool) -> None:
        """Bounded: the children get STOP_TIMEOUT after SIGTERM, the scripted server 5 s."""
        if processes is not None:
            processes.stop()
        server.stop()
        if url_mode and accounts:
            delete_sessions(accounts)
        if database is not None:
            database.stop()
        if redis_url is not None:
            try:
                redis_flush(redis_url)
            except Exception as error:  # noqa: BLE001 — best effort at the very end
                self._say(f"could not flush {redis_url}: {error}")

    def _print(self, report: dict) -> None:
        def row(name: str, value: dict) -> str:
            if not value.get("n"):
                return f"{name:<26} (no sample)"
            return (
                f"{name:<26} p50 {value['p50']:8.1f}  p95 {value['p95']:8.1f}  p99 {value['p99']:8.1f}  "
                f"max {value['max']:8.1f}  (n={value['n']})"
            )

        config = report["config"]
        lines = [
            "",
            f"connections    {report['connections']}/{config['connections']}",
            f"turns          {report['turns_completed']} completed of {report['turns_sent']} sent  "
            f"({report['turns_per_s']} turns/s completed; asked {config['rate']}/s for {config['duration']} s)",
            f"errors         {report['errors']['total']}  "
            + ", ".join(f"{k}={v}" for k, v in report["errors"].items() if k != "total"),
            f"model calls    per turn {report['model_calls_per_turn']}",
            f"warm-up        {report['warmup']} (not counted)",
            row("overhead_ms", report["overhead_ms"]),
            row("first_event_ms", report["first_event_ms"]),
            row("completion_ms", report["completion_ms"]),
            row("model_ms (scripted)", report["model_ms"]),
        ]
        lines += [row(f"  {name}", value) for name, value in report["phases_ms"].items()]
        lines.append(row("send_lag_ms (generator)", report["send_lag_ms"]))
        if report.get("postgres"):
            lines.append("postgres per turn " + ", ".join(f"{k} {v}" for k, v in report["postgres"].items()))
        if report.get("cpu"):
            cores = ", ".join(f"{k} {v}" for k, v in report["cpu"]["cores"].items())
            lines.append(f"cpu (cores of {report['cpu']['cpus']}) {cores}")
        if report.get("child_log_problems"):
            lines.append(f"log lines at WARNING+ in children: {report['child_log_problems']}")
        self.stdout.write("\n".join(lines))
