"""`manage.py loadtest`: a tiny whole run (its own daphne, worker, database and Redis database, the
scripted model), and the pieces that decide its figures."""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from agents.scripted_llm import Script
from support.loadtest.clients import percentiles, schedule
from support.loadtest.model import MARKER, ModelLedger, marked

BASE_DIR = Path(settings.BASE_DIR)
DB_NAME = "alfred_loadtest_pytest"  # not the command's default: a developer's own run may be going on
REDIS_DB = 13  # not the suite's (15) nor the command's default (14)


def _database_exists(name: str) -> bool:
    params = settings.DATABASES["default"]
    kwargs = {"dbname": "postgres", "user": params.get("USER"), "host": params.get("HOST"), "port": params.get("PORT")}
    if params.get("PASSWORD"):
        kwargs["password"] = params["PASSWORD"]
    with psycopg.connect(**{k: v for k, v in kwargs.items() if v}, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_tiny_run_completes_every_turn_and_writes_its_report(tmp_path):
    report_path = tmp_path / "loadtest.json"
    command = [
        sys.executable,
        "manage.py",
        "loadtest",
        "--connections=5",
        "--rate=2",
        "--duration=5",
        "--arrival=fixed",
        "--llm-delay-ms=50",
        "--llm-tokens=12",
        f"--db-name={DB_NAME}",
        f"--redis-db={REDIS_DB}",
        f"--log-dir={tmp_path / 'logs'}",
        f"--json={report_path}",
    ]
    # As a developer runs it: the project's settings, not the suite's (whose Redis database may be any number).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "alfred.settings"}
    process = subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # as Ctrl-C: the command stops what it started
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]

    report = json.loads(report_path.read_text())
    for key in ("turns_per_s", "overhead_ms", "first_event_ms", "errors", "connections", "config"):
        assert key in report, key
    for key in ("overhead_ms", "first_event_ms", "completion_ms"):
        assert set(report[key]) >= {"p50", "p95", "p99"}
    assert report["errors"] == {"total": 0}
    assert report["connections"] == 5
    assert report["turns_sent"] == 10 and report["turns_completed"] == 10
    assert report["turns_per_s"] > 0
    # Each turn asked the scripted model twice (triage, then the streamed refusal): 50 ms each by script.
    assert report["model_calls_per_turn"] == {"2": 10}
    assert report["model_ms"]["p50"] == 100.0
    assert report["overhead_ms"]["p50"] == pytest.approx(report["completion_ms"]["p50"] - 100.0, abs=0.2)
    assert report["config"]["connections"] == 5 and report["config"]["db_name"] == DB_NAME
    assert "overhead_ms" in stdout and "turns/s" in stdout
    # Everything it started is gone: its worker (named after the command's pid), its database.
    assert not _processes_mentioning(f"loadtest0-{process.pid}-")
    assert not _database_exists(DB_NAME)


def test_the_schedule_is_bounded_and_keeps_the_rate():
    assert schedule(rate=4, duration=5, arrival="fixed", rng=random.Random(1)) == [i / 4 for i in range(20)]
    poisson = schedule(rate=20, duration=30, arrival="poisson", rng=random.Random(7))
    assert 500 < len(poisson) < 700 and poisson == sorted(poisson) and poisson[-1] < 30
    assert len(schedule(rate=1e6, duration=1, arrival="poisson", rng=random.Random(1))) <= 2 * 10**6 + 10
    assert schedule(rate=0, duration=5, arrival="poisson", rng=random.Random(1)) == []


def test_percentiles():
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    figures = percentiles([float(v) for v in range(1, 101)])
    assert figures == {"p50": 50.5, "p95": 95.0, "p99": 99.0, "max": 100.0, "n": 100}
    assert percentiles([12.34]) == {"p50": 12.3, "p95": 12.3, "p99": 12.3, "max": 12.3, "n": 1}


def test_the_ledger_answers_triage_with_other_and_counts_the_scripted_time_per_turn():
    ledger = ModelLedger(delay=0.1, token_delay=0.01, tokens=5)
    text = marked("Should I take ibuprofen?", "abc123XYZ")
    assert MARKER.search(text).group(1) == "abc123XYZ"
    triage = {
        "messages": [{"role": "system", "content": "triage"}, {"role": "user", "content": text}],
        "tools": [{"type": "function", "function": {"name": "IntentResult", "parameters": {}}}],
    }
    reply = ledger.script.reply_for(triage)
    assert reply.tool_name == "IntentResult" and reply.arguments["intent"] == "other"
    streamed = {"messages": [{"role": "user", "content": text}], "stream": True}
    reply = ledger.script.reply_for(streamed)
    assert reply.content == "Scripted reply token3 token4 token5"
    # Streamed: role chunk, 5 pieces, finish chunk = 7 chunks, so 6 waits of 10 ms after the first byte.
    calls, seconds = ledger.turn("abc123XYZ")
    assert calls == 2 and seconds == pytest.approx(0.1 + 0.1 + 6 * 0.01)
    ledger.script.reply_for({"messages": [{"role": "user", "content": "no marker"}]})
    assert ledger.unmarked_calls == 1 and ledger.calls_total == 3
    assert isinstance(ledger.script, Script) and ledger.script.record is False
