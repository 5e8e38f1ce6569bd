"""The PostgreSQL backend: the job semantics of :mod:`.sql` for worker fleets on many hosts.

Claims take the best ready row with ``FOR UPDATE SKIP LOCKED`` (no table locks);
commits that make work ready send ``NOTIFY``, which one listener thread per process
turns into wake-ups, so dependents start within milliseconds on any host. Hosts'
clocks should be synchronised (NTP): workers' leases compare wall-clock times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..clock import now_iso
from ..errors import DatabaseError
from .contract import ClaimedJob, Row
from .postgres_connection import PostgresConnections
from .postgres_schema import SCHEMA_VERSION, migrate, recorded_version
from .sql import SQLStore
from .statements import CLAIM_RETURNING, CLAIM_SET, READY
from .transport import Tx
from .wakeup import signal_for


class PostgresStore(SQLStore):
    """A job store in one schema of a PostgreSQL database (``?schema=`` in the URL)."""

    insertion_order = "seq"
    execution_order = "seq"
    lock_shared = "FOR SHARE"
    lock_skip = "FOR UPDATE SKIP LOCKED"
    lock_update = "FOR UPDATE"
    limits_lock = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':limits'))"
    db: PostgresConnections

    def __init__(self, url: str, *, initialize: bool = True) -> None:
        self.db = PostgresConnections(url)
        self.location = self.db.location
        self.channel = f"gigq_flow_{self.db.schema}"
        self.wake = signal_for(f"{self.db.conninfo}#{self.db.schema}")
        if initialize:
            self.db.run(lambda tx: migrate(tx, self.db.schema, self.location))
        elif self.db.run(lambda tx: recorded_version(tx, self.db.schema)) != SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.location} has no current gigq_flow schema {self.db.schema!r}; "
                "open it with initialize=True to create or migrate it"
            )

    def blob(self, value: str | bytes | None) -> Any:
        return value.encode() if isinstance(value, str) else value

    def begin_snapshot(self, tx: Tx) -> None:
        tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def announce(self, tx: Tx) -> None:
        tx.execute("SELECT pg_notify(?, '')", (self.channel,))

    def claim_row(self, worker_id: str, execution_id: str,
                  settle: Callable[[Tx, Sequence[Any]], ClaimedJob]) -> ClaimedJob | None:
        return self.db.run(lambda tx: self.claim_in(tx, worker_id, execution_id, settle),
                           patient=True)

    def claim_in(self, tx: Tx, worker_id: str, execution_id: str,
                 settle: Callable[[Tx, Sequence[Any]], ClaimedJob]) -> ClaimedJob | None:
        """Lock the best ready row (SKIP LOCKED: claimers never wait on each other), then
        read the start time: no global write lock orders claims after the commits they
        see, the row lock does."""
        now = now_iso()
        picked = tx.execute(
            f"SELECT id FROM jobs WHERE {READY} FOR UPDATE SKIP LOCKED", (now,)
        ).fetchone()
        job_id = self.gated_choice(tx, now, None if picked is None else picked[0])
        if job_id is None and picked is None:
            return None
        now = now_iso()
        row: Sequence[Any] = tx.execute(
            f"UPDATE jobs SET {CLAIM_SET} WHERE id = ? {CLAIM_RETURNING}, id",
            (worker_id, now, now, execution_id, job_id or picked[0]),
        ).fetchone()
        return settle(tx, row)

    # -- reads: rows as SQLite returns them, without the internal insertion counter ----------
    def get_job(self, job_id: str) -> Row | None:
        row = super().get_job(job_id)
        if row is not None:
            row.pop("seq", None)
        return row

    def list_jobs(self, status: str | None, limit: int) -> list[Row]:
        rows = super().list_jobs(status, limit)
        for row in rows:
            row.pop("seq", None)
        return rows

    # -- wake-ups -----------------------------------------------------------------------------
    def watch(self, this_process: bool = False) -> int:
        # One listener per process and queue, started by the first waiter.
        self.db.ensure_listener(self.channel, self.wake.bump)
        return self.wake.generation

    def wait_for_work(self, timeout: float, since: Any = None, *,
                      this_process: bool = False) -> None:
        """Wake on a NOTIFY from any host or a same-process bump, else after ``timeout``
        (the listener's NOTIFYs are this process's bumps: ``this_process`` changes
        nothing)."""
        generation = self.watch() if since is None else since
        self.wake.wait(generation, timeout)


__all__ = ["PostgresStore"]
