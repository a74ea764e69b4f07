"""Real processes for the tests: a daphne server and a Celery worker, on the test database and the
suite's own Redis database, exactly as `make run` starts them."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from alfred.celery import app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(**extra: str) -> dict:
    """The environment of a child process that must use the test database (not the development one)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "alfred.test_settings", **extra}
    test_db = connection.settings_dict["NAME"]
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{test_db}"))
    else:
        env["EMBEDDED_DATABASE_NAME"] = test_db
    return env


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def asgi_server():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "alfred.asgi:application"],
        env=process_env(PLATFORM_API_URL=url),
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/accounts/login/", timeout=2)  # noqa: S310 — our own server
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("the test ASGI server did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        _stop(server)


@contextmanager
def celery_worker(*, platform_api_url: str, pool: str = "solo", concurrency: int = 1, name: str = "test", **env):
    app.control.purge()  # tasks left by earlier tests (their rows are gone) would only slow this worker down
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "alfred",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "-l",
            "WARNING",
            "-n",
            f"{name}-{os.getpid()}-{free_port()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        env=process_env(PLATFORM_API_URL=platform_api_url, **env),
    )
    deadline = time.monotonic() + 30
    while not app.control.ping(timeout=0.5, limit=1, destination=None):
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"the test Celery worker did not start (broker {settings.CELERY_BROKER_URL})")
    try:
        yield worker
    finally:
        _stop(worker)
