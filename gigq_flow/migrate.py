"""Moving a queue: copy every job, edge, execution, workflow and worker record from one
store to another, e.g. a SQLite file to PostgreSQL when workers outgrow one machine.

The source is read as one snapshot and the destination written in one transaction, so
a failed copy leaves the destination as it was. Stop the source's workers first: jobs
running during the copy arrive running, and are reclaimed on the destination once their
lease (or timeout) runs out. The rows are held in memory while they move.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .errors import DatabaseError, DestinationNotEmptyError
from .locations import describe_location, is_postgres_url
from .store import Store, open_store, queue_identity

logger = logging.getLogger(__name__)


def open_source(location: str | os.PathLike[str]) -> Store:
    """The queue to copy from; refuses a missing file (rather than creating an empty one)."""
    if not is_postgres_url(location) and not os.path.isfile(location):
        raise DatabaseError(f"no queue at {os.fspath(location)} (the file does not exist); "
                            "check the source path")
    return open_store(location, initialize=not is_postgres_url(location))


def copy_queue(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, force: bool = False
) -> dict[str, int]:
    """Copy the queue at ``src`` to ``dst`` (SQLite file paths or ``postgresql://`` URLs).

    A destination holding any row is refused with :class:`DestinationNotEmptyError`
    unless ``force=True``: then its rows are **replaced** by the source's, in the same
    transaction (nothing is appended or merged, so no id can clash). Returns the number
    of rows copied per table.
    """
    if queue_identity(src) == queue_identity(dst):
        raise DatabaseError(f"source and destination are the same queue "
                            f"({describe_location(src)}); pass another destination")
    source = open_source(src)
    destination = open_store(dst)
    existing = {table: n for table, n in destination.count_rows().items() if n}
    if existing and not force:
        held = ", ".join(f"{n} {table}" for table, n in existing.items())
        raise DestinationNotEmptyError(
            f"{describe_location(dst)} is not empty ({held}); copy to an empty queue, or pass "
            "force=True (--force) to replace its contents with the source's"
        )
    rows: dict[str, list[dict[str, Any]]] = source.export_rows()
    destination.import_rows(rows, replace=bool(existing))
    copied = {table: len(table_rows) for table, table_rows in rows.items()}
    logger.info("copied %s to %s: %s", describe_location(src), describe_location(dst), copied)
    source.close()
    destination.close()
    return copied


__all__ = ["copy_queue"]
