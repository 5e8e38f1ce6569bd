"""Storage backends behind one contract (:class:`~gigq_flow.store.contract.Store`): the
embedded SQLite file and PostgreSQL for worker fleets. Everything above the store
imports it from here."""

from __future__ import annotations

import os

from ..errors import ConfigurationError
from ..locations import is_postgres_url
from .contract import (
    REUSED,
    CacheKey,
    CacheLookup,
    ClaimedJob,
    NewJob,
    ParentResult,
    Row,
    Store,
    WorkflowRecord,
    map_tag,
    new_instance,
)
from .sqlite import SQLiteStore
from .sqlite_connection import close_thread_connections


def open_store(
    location: str | os.PathLike[str], *, initialize: bool = True, synchronous: str | None = None
) -> Store:
    """The store for a location: a ``postgresql://`` URL, else a SQLite file path.

    ``synchronous`` (SQLite's durability setting, default ``"NORMAL"``) applies to files
    only: PostgreSQL's durability is the server's ``synchronous_commit``.
    """
    if is_postgres_url(location):
        if synchronous is not None:
            raise ConfigurationError(
                "synchronous= sets a SQLite file's durability; a PostgreSQL queue's is the "
                "server's synchronous_commit setting: drop synchronous= for a postgresql:// URL"
            )
        from .postgres import PostgresStore  # psycopg is imported only for a server

        return PostgresStore(str(location), initialize=initialize)
    return SQLiteStore(location, initialize=initialize, synchronous=synchronous or "NORMAL")


def queue_identity(location: str | os.PathLike[str]) -> tuple[str, ...]:
    """What makes two locations the same queue: the resolved file path, or the server and
    schema of a URL."""
    if is_postgres_url(location):
        from .postgres_connection import split_url

        conninfo, schema, _ = split_url(str(location))
        return ("postgres", conninfo, schema)
    return ("sqlite", os.path.realpath(os.fspath(location)))


__all__ = [
    "REUSED",
    "CacheKey",
    "CacheLookup",
    "ClaimedJob",
    "NewJob",
    "ParentResult",
    "Row",
    "SQLiteStore",
    "Store",
    "WorkflowRecord",
    "close_thread_connections",
    "map_tag",
    "new_instance",
    "open_store",
    "queue_identity",
]
