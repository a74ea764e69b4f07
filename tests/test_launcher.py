"""`make run` end to end: the launcher on a fresh data folder (cold), then again on the same folder (warm).

It starts its own embedded PostgreSQL and Redis under a temporary ALFRED_VAR_DIR, migrates, seeds the demo,
serves /healthz with a real worker, and on SIGTERM stops every child and the services it started.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(var_dir: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    return {**env, "ALFRED_VAR_DIR": str(var_dir), "PORT": str(port), "WORKER_CONCURRENCY": "1"}


def start(env: dict, *, until: str = "Alfred is running at") -> tuple[subprocess.Popen, list[str], float]:
    """Start the launcher in a process group of its own (as a terminal or a service manager would), and read its
    output until it says `until`."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "alfred.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if until in line:
            return process, lines, time.monotonic() - started
        if time.monotonic() - started > 120:
            break
    process.kill()
    raise AssertionError("the launcher never said it was running:\n" + "".join(lines))


def stop(process: subprocess.Popen) -> int:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        remaining, _ = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert "[alfred] stopped" in remaining, remaining
    print(f"launcher stopped in {time.monotonic() - began:.1f} s")
    return process.returncode


def manage(env: dict, code: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def children_of(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return out.split()


@pytest.fixture
def var_parent():
    # Not pytest's tmp_path: pytest keeps its folders 0700, and the embedded PostgreSQL runs as its own
    # system user when Alfred runs as root, so it must be able to traverse the parents of its data folder.
    path = Path(tempfile.mkdtemp(prefix="alfred-launcher-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_cold_then_warm_start(var_parent):
    tmp_path = var_parent
    port = free_port()
    env = embedded_env(tmp_path / "var", port)

    process, lines, cold_s = start(env)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            health = json.load(response)
        assert health["status"] == "ok", health
        assert health["checks"]["database"]["pgvector"]
        output = "".join(lines)
        assert "claire.martin" in output and "alfred-demo" in output
        assert len(children_of(process.pid)) == 2  # the ASGI server and the worker
        manage(env, "from governance.models import Organization; Organization.objects.create(name='Kept practice')")
    finally:
        assert stop(process) == 0
    assert children_of(process.pid) == []
    assert not (tmp_path / "var" / "pgdata" / "postmaster.pid").exists(), "the embedded PostgreSQL still runs"

    process, _, warm_s = start(env)
    try:
        names = manage(
            env, "from governance.models import Organization; print(sorted(o.name for o in Organization.objects.all()))"
        )
        assert "Kept practice" in names  # the data survived the restart
        assert names.count("Harbour Dental Practice") == 1  # and the demo was not seeded twice
    finally:
        assert stop(process) == 0
    print(f"launcher cold start {cold_s:.1f} s, warm start {warm_s:.1f} s")


def embedded_services_running(var_dir: Path) -> list[str]:
    """The embedded services still running for this data folder (they run as daemons, outside the group)."""
    running = []
    pid_file = var_dir / "redis" / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), 0)
            running.append("redis")
        except (ProcessLookupError, ValueError):
            pass
    if (var_dir / "pgdata" / "postmaster.pid").exists():
        running.append("postgres")
    return running


@pytest.mark.parametrize(
    ("sig", "when"),
    [(signal.SIGTERM, "Alfred is running at"), (signal.SIGINT, "started embedded")],
    ids=["SIGTERM-to-the-group-while-serving", "SIGINT-to-the-group-during-start-up"],
)
def test_a_signal_to_the_whole_process_group_stops_everything_it_started(var_parent, sig, when):
    """A service manager's SIGTERM, or a terminal's Ctrl-C, reaches every process of the group at once: the
    launcher must still stop the embedded services (daemons outside the group) and leave nothing running."""
    var_dir = var_parent / "var"
    process, lines, _ = start(embedded_env(var_dir, free_port()), until=when)
    group = os.getpgid(process.pid)
    os.killpg(group, sig)
    try:
        remaining, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        raise

    output = "".join(lines) + remaining
    assert process.returncode == 0, output
    assert "[alfred] stopped" in output
    assert embedded_services_running(var_dir) == [], output
    assert group_members(group) == [], output  # no process of the group is left


def group_members(group: int, wait: float = 10) -> list[str]:
    """The processes still in the group (given `wait` seconds to finish exiting), with their command lines."""
    deadline = time.monotonic() + wait
    while True:
        out = subprocess.run(["ps", "-e", "-o", "pgid=,pid=,args="], capture_output=True, text=True).stdout
        left = [line.strip() for line in out.splitlines() if line.split() and line.split()[0] == str(group)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
