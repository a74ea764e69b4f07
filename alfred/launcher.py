"""`make run`: start Alfred on one machine — embedded services if none are configured, migrations,
demo data, the ASGI server and a Celery worker — and print where to go and how to log in.

Ctrl-C (SIGINT) or SIGTERM stops every child, and the embedded services this launcher started itself.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from alfred import embedded

PYTHON = sys.executable
MANAGE = [PYTHON, str(embedded.BASE_DIR / "manage.py")]


def _say(text: str) -> None:
    print(f"[alfred] {text}", flush=True)


def _start_embedded(started: list[str]) -> None:
    """Start what is missing; `started` grows as each service starts, so a failure or a signal half-way still
    stops what was started."""
    if not os.environ.get("DATABASE_URL"):
        if not embedded.postgres_running():
            started.append("postgres")
        embedded.postgres_database()
    if not os.environ.get("REDIS_URL") and embedded.redis_start():
        started.append("redis")


def _wait_healthy(url: str, children: list[subprocess.Popen], stopping: list, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 — our own http:// URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    return False


def _banner(url: str, accounts: list[dict]) -> None:
    lines = ["", "Demo logins (password for all: alfred-demo):"]
    for account in accounts:
        where = account["organization"] or "platform"
        lines.append(f"  {account['username']:<20} {account['role']:<13} {account['name']} — {where}")
    lines += ["", f"Alfred is running at {url}  (Ctrl-C to stop)"]
    print("\n".join(lines), flush=True)


def _stop(children: list[subprocess.Popen], started: list[str]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if "redis" in started:
        embedded.redis_stop()
    if "postgres" in started:
        embedded.postgres_stop()
    with contextlib.suppress(OSError):  # the terminal or the pipe may be gone with the signal
        _say("stopped")


def main() -> int:
    """Start everything, serve until SIGINT (Ctrl-C) or SIGTERM, then stop everything this run started.

    The signals are caught from the first line: a signal during start-up (the terminal's Ctrl-C reaches the
    whole process group, as does a service manager's SIGTERM) stops what was already started — the embedded
    PostgreSQL and Redis run as daemons outside the group and would otherwise be left running."""
    stopping: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104 — only to print a URL
    url = f"http://{shown_host}:{port}/"
    started: list[str] = []
    children: list[subprocess.Popen] = []
    try:
        _start_embedded(started)
        if started:
            _say(f"started embedded {', '.join(started)} (data under {embedded.VAR_DIR})")
        if stopping:
            return 0
        subprocess.run([*MANAGE, "migrate", "--noinput", "-v", "0"], check=True)
        seeded = subprocess.run([*MANAGE, "seed_demo", "--json"], check=True, capture_output=True, text=True)
        if stopping:
            return 0
        accounts = json.loads(seeded.stdout)["accounts"]
        children += _start_children(host, port)
        if not _wait_healthy(url + "healthz", children, stopping):
            if stopping:
                return 0
            _say("Alfred did not become healthy; see the output above")
            return 1
        _banner(url, accounts)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.3)
        return 0 if stopping else 1
    except subprocess.CalledProcessError:
        if stopping:  # the signal reached the migration or the seeding too
            return 0
        raise
    finally:
        _stop(children, started)


def _start_children(host: str, port: str) -> list[subprocess.Popen]:
    return [
        subprocess.Popen([PYTHON, "-m", "daphne", "-b", host, "-p", port, "alfred.asgi:application"]),
        subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "alfred",
                "worker",
                "-l",
                "WARNING",
                "--concurrency",
                os.environ.get("WORKER_CONCURRENCY", "2"),
                "-n",
                f"alfred-{os.getpid()}@%h",
                "--beat",  # one machine, one worker: it also runs the daily tasks (the audit chain head)
                "--schedule",
                str(embedded.VAR_DIR / "celerybeat-schedule"),
            ]
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
