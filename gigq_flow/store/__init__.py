"""Storage backends behind one contract (:class:`~gigq_flow.store.base.Store`)."""

from __future__ import annotations

import os

from .base import Store
from .sqlite import SQLiteStore


def open_store(
    location: str | os.PathLike[str], *, initialize: bool = True, synchronous: str = "NORMAL"
) -> Store:
    """The store for a file path (SQLite)."""
    return SQLiteStore(location, initialize=initialize, synchronous=synchronous)


__all__ = ["SQLiteStore", "Store", "open_store"]
