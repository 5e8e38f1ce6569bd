"""Storage backends behind one contract (:class:`~gigq_flow.store.base.Store`)."""

from __future__ import annotations

import os

from .base import Store
from .postgres_connection import is_postgres_url
from .sqlite import SQLiteStore


def open_store(
    location: str | os.PathLike[str], *, initialize: bool = True, synchronous: str = "NORMAL"
) -> Store:
    """The store for a location: a ``postgresql://`` URL, else a SQLite file path."""
    if is_postgres_url(location):
        from .postgres import PostgresStore

        return PostgresStore(str(location), initialize=initialize)
    return SQLiteStore(location, initialize=initialize, synchronous=synchronous)


__all__ = ["SQLiteStore", "Store", "open_store"]
