"""GigQ's connection helpers (module path ``gigq_flow.db_utils``), for reading a queue
file with your own SQL.

:func:`get_connection` gives this thread a connection to the file whose rows are
``sqlite3.Row`` (by name or index), in the WAL journal, so reads never block the
workers, with GigQ's 30-second busy timeout. The queue's own connections are separate,
tuned for its hot path: :func:`close_connection` and :func:`close_connections` close
this thread's connections of both kinds.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from .store import close_thread_connections

BUSY_TIMEOUT_SECONDS = 30.0

_local = threading.local()


def _connections() -> dict[str, sqlite3.Connection]:
    connections: dict[str, sqlite3.Connection] | None = getattr(_local, "connections", None)
    if connections is None:
        connections = _local.connections = {}
    return connections


def get_connection(db_path: str | os.PathLike[str]) -> sqlite3.Connection:
    """This thread's connection to the queue file at ``db_path``, opened on first use."""
    path = os.path.abspath(os.fspath(db_path))
    connections = _connections()
    conn = connections.get(path)
    if conn is None:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        connections[path] = conn
    return conn


def close_connection(db_path: str | os.PathLike[str]) -> None:
    """Close this thread's connections to the file at ``db_path``."""
    path = os.path.abspath(os.fspath(db_path))
    conn = _connections().pop(path, None)
    if conn is not None:
        conn.close()
    close_thread_connections(path)


def close_connections() -> None:
    """Close every connection this thread opened, to any queue file."""
    connections = _connections()
    while connections:
        connections.popitem()[1].close()
    close_thread_connections()


__all__ = ["close_connection", "close_connections", "get_connection"]
