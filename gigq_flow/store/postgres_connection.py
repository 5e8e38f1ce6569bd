"""The PostgreSQL transport: a connection pool per process, transactions, LISTEN.

Connection policy: one ``psycopg_pool.ConnectionPool`` per process and database/schema
(at most ``?pool_size=N`` connections, default POOL_MAX_SIZE), autocommit connections
with ``search_path`` set to the queue's schema; every write is one transaction, retried
when PostgreSQL reports a deadlock or a serialization failure. Notifications are
received by one listener thread, on one dedicated connection, per process and queue.
:func:`close_pools` closes them (the next use reopens).
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import DatabaseError
from ..locations import redact

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "gigq_flow"
POOL_MAX_SIZE = 16
CONNECT_TIMEOUT = 10.0
CONFLICT_RETRIES = 20
LISTEN_POLL_SECONDS = 0.5
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

T = TypeVar("T")
_jitter = random.Random()  # not the random module's: users may seed that one
Key = tuple[int, str, str]  # (pid, conninfo, schema): a fork gets pools of its own
_pools: dict[Key, Any] = {}
_listeners: dict[Key, tuple[threading.Thread, threading.Event, str]] = {}
_pools_lock = threading.Lock()
_translated: dict[str, str] = {}


def split_url(url: str) -> tuple[str, str, int]:
    """The libpq connection string, the schema (``?schema=NAME``, default gigq_flow) and
    the pool size (``?pool_size=N``, default POOL_MAX_SIZE); other parameters go to libpq."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    options = dict(query)
    schema = options.get("schema", DEFAULT_SCHEMA)
    if not IDENTIFIER.fullmatch(schema):
        raise DatabaseError(
            f"schema {schema!r} is not a plain SQL identifier; use letters, digits and _"
        )
    size = options.get("pool_size", str(POOL_MAX_SIZE))
    if not size.isdigit() or int(size) < 1:
        raise DatabaseError(f"pool_size must be a whole number >= 1, got {size!r}")
    rest = urlencode([(key, value) for key, value in query if key not in ("schema", "pool_size")])
    return urlunsplit(parts._replace(query=rest)), schema, int(size)


def translate(sql: str) -> str:
    """``?`` marks to psycopg's ``%s`` (and literal ``%`` doubled), cached."""
    text = _translated.get(sql)
    if text is None:
        text = _translated[sql] = sql.replace("%", "%%").replace("?", "%s")
    return text


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
        self.psycopg_pool = psycopg_pool
        self.url = url
        self.location = redact(url)
        self.conninfo, self.schema, self.pool_size = split_url(url)
        _ = self.pool  # connect now: a wrong URL fails here, naming the server

    @property
    def key(self) -> Key:
        return (os.getpid(), self.conninfo, self.schema)

    @property
    def pool(self) -> Any:
        """This process's pool for the queue (reopened after :func:`close_pools`)."""
        pool = _pools.get(self.key)
        if pool is not None:
            return pool
        with _pools_lock:
            key = self.key
            pool = _pools.get(key)
            if pool is None:
                self._check_reachable()
                pool = self.psycopg_pool.ConnectionPool(
                    self.conninfo, min_size=1, max_size=self.pool_size, open=False,
                    kwargs={"autocommit": True}, configure=self._configure,
                    timeout=CONNECT_TIMEOUT, name=f"gigq-flow-{self.schema}",
                )
                try:
                    pool.open(wait=True, timeout=CONNECT_TIMEOUT)
                except self.psycopg_pool.PoolTimeout as exc:
                    pool.close()
                    raise DatabaseError(
                        f"cannot connect to {self.location}: no answer within "
                        f"{CONNECT_TIMEOUT:.0f}s; is the server running and the URL right?"
                    ) from exc
                _pools[key] = pool
            return pool

    def _check_reachable(self) -> None:
        """Connect once: a refused connection, a wrong password or a missing database is
        reported at once and by its cause (a pool would retry until its timeout)."""
        try:
            self.psycopg.connect(self.conninfo, connect_timeout=int(CONNECT_TIMEOUT)).close()
        except self.psycopg.OperationalError as exc:
            cause = " ".join(str(exc).split())  # libpq's message spans lines
            raise DatabaseError(f"cannot connect to {self.location}: {cause}") from exc

    def _configure(self, conn: Any) -> None:
        conn.execute(f'SET search_path TO "{self.schema}"')

    def wrap(self, exc: Exception) -> DatabaseError:
        return DatabaseError(f"{self.location}: {exc}")

    def run(self, body: Callable[[PgTx], T], *, patient: bool = False) -> T:
        """Run ``body`` in one transaction, again on deadlock or serialization failure
        (PostgreSQL queues lock waits itself: ``patient`` changes nothing here)."""
        errors = self.psycopg.errors
        for attempt in range(CONFLICT_RETRIES):
            try:
                with self.pool.connection() as conn, conn.transaction():
                    return body(PgTx(conn))
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                logger.debug("%s: %s; retrying", self.location, exc)
                time.sleep(_jitter.uniform(0, 0.002 * (attempt + 1)))
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

    def read_tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self.pool.connection() as conn:
                with conn.cursor() as cursor:
                    return cursor.execute(translate(sql), tuple(params)).fetchall()
        except self.psycopg.Error as exc:
            raise self.wrap(exc) from exc

    def stream_tuples(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """``read_tuples`` one row at a time (the driver has read them all)."""
        return iter(self.read_tuples(sql, params))

    def ensure_listener(self, channel: str, on_notify: Callable[[], None]) -> None:
        """Start this process's listener thread for the queue unless it is running."""
        with _pools_lock:
            key = self.key
            running = _listeners.get(key)
            if running is not None and running[0].is_alive() and not running[1].is_set():
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=self.listen, args=(channel, on_notify, stop),
                name=f"gigq-flow-listen-{self.schema}", daemon=True,
            )
            _listeners[key] = (thread, stop, channel)
            thread.start()

    def listen(self, channel: str, on_notify: Callable[[], None], stop: threading.Event) -> None:
        """Call ``on_notify`` for each NOTIFY on ``channel`` until ``stop`` is set;
        reconnects after errors."""
        while not stop.is_set():
            try:
                with self.psycopg.connect(self.conninfo, autocommit=True,
                                          connect_timeout=int(CONNECT_TIMEOUT)) as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    on_notify()  # anything sent while we were not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_POLL_SECONDS):
                            if stop.is_set():  # close_pools' wake-up: stop now
                                break
                            on_notify()
            except self.psycopg.Error:
                if stop.is_set():
                    break
                logger.warning("%s: lost the LISTEN connection; reconnecting", self.location)
                stop.wait(LISTEN_POLL_SECONDS)

    def close(self) -> None:
        """Connections go back to the pool after each use: nothing is held per thread."""


def close_pools(url: str | None = None) -> None:
    """Close this process's pools and listeners (of one queue URL, or all of them).

    Stores stay usable: their next operation opens a new pool.
    """
    pid = os.getpid()
    wanted = None
    if url is not None:
        conninfo, schema, _ = split_url(url)
        wanted = (pid, conninfo, schema)
    with _pools_lock:
        keys = [key for key in set(_pools) | set(_listeners)
                if key[0] == pid and wanted in (None, key)]
        pools = {key: _pools.pop(key) for key in keys if key in _pools}
        listeners = [(key, _listeners.pop(key)) for key in keys if key in _listeners]
    for key, (_, stop, channel) in listeners:
        stop.set()
        pool = pools.get(key)
        if pool is not None:  # wake the listener now rather than at its next poll
            try:
                with pool.connection() as conn:
                    conn.execute("SELECT pg_notify(%s, '')", (channel,))
            except Exception:  # noqa: BLE001 - closing anyway; it stops within a poll
                logger.debug("%s: could not wake the listener to stop it", redact(url or ""))
    for pool in pools.values():
        pool.close()
    for _, (thread, _, _) in listeners:
        thread.join(LISTEN_POLL_SECONDS * 2)
