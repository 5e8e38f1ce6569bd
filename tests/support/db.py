"""The databases under the queues: reading and writing them directly, as GigQ-style SQL
or a hostile writer would, and the PostgreSQL server the contract suite runs against.

The PostgreSQL half runs against the server at $GIGQ_FLOW_TEST_POSTGRES (default: the
local one); each test gets a schema of its own (see the ``postgres_url`` fixture).
"""

from __future__ import annotations

import functools
import os
import sqlite3
from pathlib import Path
from typing import Any

POSTGRES_ENV = "GIGQ_FLOW_TEST_POSTGRES"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def is_postgres(location: Any) -> bool:
    return isinstance(location, str) and location.startswith("postgresql://")


class Record(tuple):
    """A row readable by position and by column name, as ``sqlite3.Row`` is."""

    def __new__(cls, names: list[str], values: Any) -> Record:
        record = super().__new__(cls, values)
        record.names = {name: i for i, name in enumerate(names)}
        return record

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self.names[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self.names)


def rows(location: Path | str, statement: str, args: tuple = ()) -> list[Record]:
    """The rows of one read statement, by position or column name: a plain sqlite3
    connection for a file, the store's transport for a postgresql:// URL."""
    if is_postgres(location):
        from gigq_flow.store import open_store

        return [Record(list(row), row.values()) for row in
                open_store(location).db.read(statement, args)]
    conn = sqlite3.connect(location, timeout=60)
    try:
        cursor = conn.execute(statement, args)
        names = [column[0] for column in cursor.description]
        return [Record(names, row) for row in cursor.fetchall()]
    finally:
        conn.close()


def sql(path: Path | str, statement: str, args: tuple = ()) -> list[tuple]:
    """Run one statement on a plain sqlite3 connection (GigQ-style SQL), or, for a
    postgresql:// URL, in one transaction of the store's own transport."""
    if is_postgres(path):
        from gigq_flow.store import open_store

        def body(tx):
            cursor = tx.execute(statement, args)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

        return open_store(path).db.run(body)
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(statement, args).fetchall()
        conn.commit()
        return found
    finally:
        conn.close()


def claim_as(location: Any, worker_id: str):
    """Claim the best ready job through a store of its own, as a registered worker would;
    returns (store, instance, claim)."""
    from gigq_flow.store import new_instance, open_store

    store, instance = open_store(location), new_instance()
    store.register_worker(instance, worker_id, 1, 60)
    return store, instance, store.claim(worker_id, f"{instance}-1")


def lapse_lease(location: Any, instance: str) -> None:
    """Make a worker's lease run out, as if it stopped sending heartbeats long ago."""
    sql(location, "UPDATE workers SET last_heartbeat = 0 WHERE instance = ?", (instance,))


# -- the PostgreSQL test server ----------------------------------------------------------------
def postgres_server() -> str:
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES


@functools.cache
def postgres_unavailable() -> str | None:
    """Why the PostgreSQL half cannot run here, or None when the server answers."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(postgres_server(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        from gigq_flow.locations import redact

        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f"no PostgreSQL server answers at {redact(postgres_server())} ({first_line}); "
                f"set {POSTGRES_ENV} to a database URL to run the PostgreSQL half")
    return None


def schema_url(schema: str) -> str:
    """The test server's URL, naming ``schema``."""
    server = postgres_server()
    return f"{server}{'&' if '?' in server else '?'}schema={schema}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(postgres_server(), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
