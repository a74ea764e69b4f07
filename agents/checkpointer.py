"""LangGraph's Postgres checkpointer, in its own schema of Alfred's database (settings.LANGGRAPH_SCHEMA).

Its tables have generic names, so they live apart from Django's. `setup()` runs CREATE INDEX
CONCURRENTLY, so it needs an autocommit connection: it is run by `manage.py setup_checkpointer` (and on
first use in a process), never inside a migration. One small connection pool per process.
"""

import threading

from django.conf import settings
from django.db import connection
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

_lock = threading.Lock()
_savers: dict[str, PostgresSaver] = {}


def _conninfo() -> str:
    params = connection.settings_dict
    parts = {
        "dbname": params["NAME"],
        "user": params.get("USER") or "",
        "password": params.get("PASSWORD") or "",
        "host": params.get("HOST") or "",
        "port": str(params.get("PORT") or ""),
    }
    return " ".join(f"{key}='{value}'" for key, value in parts.items() if value)


def checkpointer() -> PostgresSaver:
    """The process' checkpointer for the current database, created (and its tables set up) on first use."""
    conninfo = _conninfo()
    with _lock:
        saver = _savers.get(conninfo)
        if saver is None:
            schema = settings.LANGGRAPH_SCHEMA
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            pool = ConnectionPool(
                conninfo + f" options='-c search_path={schema}'",
                min_size=1,
                max_size=4,
                kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
                open=True,
            )
            saver = PostgresSaver(pool)
            saver.setup()
            _savers[conninfo] = saver
    return saver


def checkpointer_close() -> None:
    """Close this process' checkpointer pool on the current database (before dropping that database; the
    next use opens a fresh one)."""
    conninfo = _conninfo()
    with _lock:
        saver = _savers.pop(conninfo, None)
    if saver is not None:
        saver.conn.close()
