"""The PostgreSQL transport: a connection pool per process, transactions, LISTEN.

Connection policy: one ``psycopg_pool.ConnectionPool`` per process and database/schema,
autocommit connections with ``search_path`` set to the queue's schema; every write is
one transaction, retried when PostgreSQL reports a deadlock or a serialization
failure. Notifications are received on one dedicated connection per process.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from typing import Any, Callable, Iterable, Sequence, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import DatabaseError

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "gigq_flow"
POOL_MAX_SIZE = 16
CONNECT_TIMEOUT = 10.0
CONFLICT_RETRIES = 20
LISTEN_POLL_SECONDS = 1.0
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

T = TypeVar("T")
_pools: dict[tuple[int, str, str], Any] = {}
_pools_lock = threading.Lock()
_translated: dict[str, str] = {}


def is_postgres_url(location: Any) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def split_url(url: str) -> tuple[str, str]:
    """The libpq connection string and the schema (``?schema=NAME``, default gigq_flow)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = dict(query).get("schema", DEFAULT_SCHEMA)
    if not IDENTIFIER.fullmatch(schema):
        raise DatabaseError(
            f"schema {schema!r} is not a plain SQL identifier; use letters, digits and _"
        )
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def translate(sql: str) -> str:
    """``?`` marks to psycopg's ``%s`` (and literal ``%`` doubled), cached."""
    text = _translated.get(sql)
    if text is None:
        text = _translated[sql] = sql.replace("%", "%%").replace("?", "%s")
    return text


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


class PgTx:
    """A transaction body's view of a psycopg connection, with ``?`` marks."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(translate(sql), list(rows))


class PostgresConnections:
    """Connections to one schema of one PostgreSQL database."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
            import psycopg_pool
        except ImportError as exc:
            raise DatabaseError(
                "the PostgreSQL backend needs psycopg 3; install it with "
                "pip install 'gigq-flow[postgres]'"
            ) from exc
        self.psycopg = psycopg
        self.url = url
        self.location = redact(url)
        self.conninfo, self.schema = split_url(url)
        key = (os.getpid(), self.conninfo, self.schema)
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                pool = psycopg_pool.ConnectionPool(
                    self.conninfo, min_size=1, max_size=POOL_MAX_SIZE, open=False,
                    kwargs={"autocommit": True}, configure=self._configure,
                    timeout=CONNECT_TIMEOUT, name=f"gigq-flow-{self.schema}",
                )
                try:
                    pool.open(wait=True, timeout=CONNECT_TIMEOUT)
                except psycopg_pool.PoolTimeout as exc:
                    pool.close()
                    raise DatabaseError(
                        f"cannot connect to {self.location}: no answer within "
                        f"{CONNECT_TIMEOUT:.0f}s; is the server running and the URL right?"
                    ) from exc
                _pools[key] = pool
        self.pool = pool

    def _configure(self, conn: Any) -> None:
        conn.execute(f'SET search_path TO "{self.schema}"')

    def wrap(self, exc: Exception) -> DatabaseError:
        return DatabaseError(f"{self.location}: {exc}")

    def run(self, body: Callable[[PgTx], T]) -> T:
        """Run ``body`` in one transaction, again on deadlock or serialization failure."""
        errors = self.psycopg.errors
        for attempt in range(CONFLICT_RETRIES):
            try:
                with self.pool.connection() as conn, conn.transaction():
                    return body(PgTx(conn))
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                logger.debug("%s: %s; retrying", self.location, exc)
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                last = exc
            except self.psycopg.Error as exc:
                raise self.wrap(exc) from exc
        raise self.wrap(last)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        try:
            with self.pool.connection() as conn:
                with conn.cursor(row_factory=dict_row) as cursor:
                    return cursor.execute(translate(sql), tuple(params)).fetchall()
        except self.psycopg.Error as exc:
            raise self.wrap(exc) from exc

    def listen(self, channel: str, on_notify: Callable[[], None], stop: threading.Event) -> None:
        """Call ``on_notify`` for each NOTIFY on ``channel`` until ``stop`` is set;
        reconnects after errors."""
        while not stop.is_set():
            try:
                with self.psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    on_notify()  # anything sent while we were not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_POLL_SECONDS):
                            on_notify()
            except self.psycopg.Error:
                logger.warning("%s: lost the LISTEN connection; reconnecting", self.location)
                stop.wait(LISTEN_POLL_SECONDS)

    def close(self) -> None:
        """Connections go back to the pool after each use: nothing is held per thread."""
