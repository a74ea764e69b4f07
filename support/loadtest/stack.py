"""What a self-contained load test starts, and stops again: an isolated database and Redis database, the
load-test practice with its users and sessions, daphne process(es) and Celery worker process(es).

Isolation: the database is `--db-name` (default `alfred_loadtest`) on the same PostgreSQL server as the
configured one, dropped and created afresh, migrated, with the LangGraph checkpointer's tables set up;
the children find it through `EMBEDDED_DATABASE_NAME` (embedded server) or a `DATABASE_URL` naming it.
Redis is the same server with another database number (`--redis-db`, default 14), flushed before and
after. The development database and Redis database are never written to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from django.conf import settings
from django.db import connections

from alfred.env import celery_broker_url

PYTHON = sys.executable
BASE_DIR = Path(settings.BASE_DIR)
USERNAME_PREFIX = "loadtest-"
PRACTICE_NAME = "Alfred load test practice"
STOP_TIMEOUT = 10.0  # seconds a child gets after SIGTERM, then SIGKILL (its whole process group)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_client(url: str):
    import redis

    parts = urlsplit(url)
    if parts.scheme == "unix":
        db = int(parse_qs(parts.query).get("db", ["0"])[0])
        return redis.Redis(unix_socket_path=parts.path, db=db, socket_timeout=5)
    return redis.Redis.from_url(url, socket_timeout=5)


def redis_flush(url: str) -> None:
    client = _redis_client(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- The isolated database ---------------------------------------------------------------------------------


def _admin_connect():
    """An autocommit connection to the server's `postgres` database, with the configured credentials."""
    import psycopg

    params = connections["default"].settings_dict
    kwargs = {
        "dbname": "postgres",
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": str(params.get("PORT") or "") or None,
    }
    return psycopg.connect(**{k: v for k, v in kwargs.items() if v is not None}, autocommit=True)


def _drop_database(name: str) -> None:
    with _admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class IsolatedDatabase:
    """Point this process' default connection at a fresh database `name` (created, migrated), as Django's
    own test runner does, and back again (dropping it unless `keep`)."""

    def __init__(self, name: str, *, keep: bool = False) -> None:
        if not name.replace("_", "").isalnum():
            raise ValueError("the load-test database name must be letters, digits and underscores")
        self.name = name
        self.keep = keep
        self.original_name: str | None = None

    def start(self, log=print) -> None:
        from django.core.management import call_command

        connection = connections["default"]
        if connection.settings_dict["NAME"] == self.name:
            raise ValueError("the load-test database must not be the configured database")
        _drop_database(self.name)
        with _admin_connect() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        connection.close()
        self.original_name = connection.settings_dict["NAME"]
        connection.settings_dict["NAME"] = self.name
        settings.DATABASES["default"]["NAME"] = self.name
        started = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        self._setup_checkpointer()
        log(f"database {self.name}: created and migrated in {time.monotonic() - started:.1f} s")

    def _setup_checkpointer(self) -> None:
        """The LangGraph tables, once, here: several workers starting at once would race on `setup()`."""
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        schema = settings.LANGGRAPH_SCHEMA
        params = connections["default"].settings_dict
        kwargs = {
            "dbname": self.name,
            "user": params.get("USER") or None,
            "password": params.get("PASSWORD") or None,
            "host": params.get("HOST") or None,
            "port": str(params.get("PORT") or "") or None,
        }
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        with psycopg.connect(**kwargs, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(f'SET search_path TO "{schema}"')
            PostgresSaver(conn).setup()

    def activity(self, *, settle: float = 0.0) -> dict | None:
        """Cumulative counters of the isolated database (pg_stat_database): transactions, statements'
        time, new sessions, rows. A backend reports them lazily, and always when its session ends:
        `settle` waits (that many seconds at most) until no session is left on the database."""
        columns = ("xact_commit", "xact_rollback", "sessions", "active_time", "tup_inserted", "tup_updated")
        try:
            with _admin_connect() as conn:
                deadline = time.monotonic() + settle
                while time.monotonic() < deadline:
                    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                    if not conn.execute(query, [self.name]).fetchone()[0]:
                        break
                    time.sleep(0.1)
                conn.execute("SELECT pg_stat_clear_snapshot()")
                row = conn.execute(
                    f"SELECT {', '.join(columns)} FROM pg_stat_database WHERE datname = %s",  # noqa: S608
                    [self.name],
                ).fetchone()
        except Exception:  # noqa: BLE001 — figures only: none rather than a failed run
            return None
        return dict(zip(columns, (float(value or 0) for value in row), strict=True)) if row else None

    def child_env(self) -> dict[str, str]:
        """How a child process finds the isolated database."""
        if getattr(settings, "DATABASE_URL", ""):
            params = connections["default"].settings_dict
            user = quote(params.get("USER") or "", safe="")
            password = quote(params.get("PASSWORD") or "", safe="")
            auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
            host = params.get("HOST") or "localhost"
            port = f":{params['PORT']}" if params.get("PORT") else ""
            url = f"postgresql://{auth}{host}{port}/{self.name}"
            if host.startswith("/"):  # a socket directory
                url = f"postgresql://{auth}/{self.name}?host={quote(host, safe='/')}" + (
                    f"&port={params['PORT']}" if params.get("PORT") else ""
                )
            return {"DATABASE_URL": url, "DATABASE_URL_FILE": ""}
        return {"EMBEDDED_DATABASE_NAME": self.name}

    def stop(self) -> None:
        if self.original_name is None:
            return
        connections["default"].close()
        connections["default"].settings_dict["NAME"] = self.original_name
        settings.DATABASES["default"]["NAME"] = self.original_name
        self.original_name = None
        if not self.keep:
            with contextlib.suppress(Exception):  # best effort: a leftover database is dropped by the next run
                _drop_database(self.name)


# --- The load-test practice: users, conversations, sessions ----------------------------------------------


@dataclass
class Account:
    username: str
    session_key: str
    conversation_id: int


def create_accounts(count: int) -> list[Account]:
    """`count` members of one practice, each with a conversation and a logged-in session.

    Reuses the users of an earlier run (by username) when there are any: with `--url` they live in the
    target's database.
    """
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password

    from governance.models import Membership, Organization
    from support.models import Conversation

    User = get_user_model()  # noqa: N806
    organization = Organization.objects.filter(name=PRACTICE_NAME).first()
    if organization is None:
        organization = Organization.objects.create(name=PRACTICE_NAME)
    usernames = [f"{USERNAME_PREFIX}{index:05d}" for index in range(count)]
    existing = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
    User.objects.bulk_create(
        [
            User(username=name, first_name="Load", last_name=f"Test {name[-5:]}", password=make_password(None))
            for name in usernames
            if name not in existing
        ]
    )
    users = {user.username: user for user in User.objects.filter(username__in=usernames)}
    members = set(Membership.objects.filter(organization=organization).values_list("user_id", flat=True))
    Membership.objects.bulk_create(
        [
            Membership(user=user, organization=organization, role=Membership.Role.SECRETARY)
            for user in users.values()
            if user.pk not in members
        ]
    )
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(user=users[name], organization=organization, language="en", title="Load test")
            for name in usernames
        ]
    )
    engine = import_module(settings.SESSION_ENGINE)
    accounts = []
    for name, conversation in zip(usernames, conversations, strict=True):
        user = users[name]
        session = engine.SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.set_expiry(timedelta(hours=2))
        session.create()
        accounts.append(Account(username=name, session_key=session.session_key, conversation_id=conversation.pk))
    return accounts


def delete_sessions(accounts: list[Account]) -> None:
    engine = import_module(settings.SESSION_ENGINE)
    for account in accounts:
        with contextlib.suppress(Exception):
            engine.SessionStore(session_key=account.session_key).delete()


# --- The processes -------------------------------------------------------------------------------------------


@dataclass
class Processes:
    """daphne and Celery workers as children, each in its own process group, their output in `log_dir`."""

    env: dict[str, str]
    log_dir: Path
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    asgi_urls: list[str] = field(default_factory=list)
    worker_names: list[str] = field(default_factory=list)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 — kept open for the child's lifetime
        try:
            child = subprocess.Popen(
                argv,
                env=env,
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the children ourselves
            )
        finally:
            log.close()
        self.children.append((name, child))
        return child

    def start_asgi(self, count: int, *, timeout: float = 60) -> list[str]:
        ports = [free_port() for _ in range(count)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        env = {**self.env, "PLATFORM_API_URL": urls[0]}
        for index, port in enumerate(ports):
            self._spawn(
                f"daphne-{index}",
                [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "alfred.asgi:application"],
                env,
            )
        deadline = time.monotonic() + timeout
        for url in urls:
            while not _http_ok(url + "/accounts/login/"):
                self._check_alive("daphne")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne at {url} did not start; see {self.log_dir}")
                time.sleep(0.1)
        self.asgi_urls = urls
        return urls

    def start_workers(
        self, count: int, *, concurrency: int, pool: str, env: dict[str, str], extra_args: list[str], timeout=90
    ) -> list[str]:
        tag = f"{os.getpid()}-{free_port()}"
        for index in range(count):
            name = f"loadtest{index}-{tag}@127.0.0.1"
            self._spawn(
                f"worker-{index}",
                [
                    PYTHON,
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
                    name,
                    "--without-mingle",
                    "--without-gossip",
                    *extra_args,
                ],
                {**self.env, "PLATFORM_API_URL": self.asgi_urls[0] if self.asgi_urls else "", **env},
            )
            self.worker_names.append(name)
        self._wait_workers(timeout)
        return self.worker_names

    def _wait_workers(self, timeout: float) -> None:
        from celery import Celery

        broker = celery_broker_url(self.env["REDIS_URL"])
        probe = Celery("alfred-loadtest-probe", broker=broker)
        probe.conf.broker_connection_retry_on_startup = True
        deadline = time.monotonic() + timeout
        try:
            while True:
                answered = {name for reply in probe.control.ping(timeout=0.5) or [] for name in reply}
                if answered >= set(self.worker_names):
                    return
                self._check_alive("worker")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Celery workers did not all start; see {self.log_dir}")
        finally:
            probe.close()

    def pid_groups(self) -> dict[str, list[int]]:
        """Root pids per kind of child, for the CPU accounting."""
        groups: dict[str, list[int]] = {"daphne": [], "workers": []}
        for name, child in self.children:
            groups["daphne" if name.startswith("daphne") else "workers"].append(child.pid)
        return groups

    def _check_alive(self, kind: str) -> None:
        for name, child in self.children:
            if name.startswith(kind) and child.poll() is not None:
                raise RuntimeError(f"{name} exited with code {child.returncode}; see {self.log_dir / name}.log")

    def stop(self) -> None:
        """SIGTERM to every child (a worker's warm shutdown hands its unfinished tasks back), then SIGKILL to
        its whole process group (prefork pool processes included) after STOP_TIMEOUT at most."""
        for _, child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group too: prefork pool processes may outlive their parent for a moment.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=2)
        self.children.clear()

    def log_problems(self) -> dict[str, int]:
        """Lines of the children's logs at WARNING or above, and tracebacks, per log file."""
        counts = {}
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            count = sum(
                1 for line in text.splitlines() if " ERROR " in line or " WARNING " in line or "Traceback" in line
            )
            if count:
                counts[path.name] = count
        return counts


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 — our own http:// child
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
