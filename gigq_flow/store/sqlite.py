"""The embedded backend: the job semantics of :mod:`.sql` over one SQLite file.

The file, its connections and its transactions belong to :mod:`.sqlite_connection`;
the schema and its migrations to :mod:`.sqlite_schema`. Other processes' commits are
noticed through ``PRAGMA data_version``, same-process ones through a WakeSignal.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..clock import now_iso
from ..errors import DatabaseError
from .contract import ClaimedJob
from .sql import SQLStore
from .sqlite_connection import QueueConnection, SQLiteConnections
from .sqlite_schema import SCHEMA_VERSION, check_version, migrate
from .statements import (
    CLAIM_SET,
    CLAIMED_COLUMNS,
    COMPLETE_SET,
    READY,
    READY_FIRST,
    RELEASE_CHILDREN,
    chunks,
    marks,
)
from .transport import Tx
from .wakeup import signal_for

CHANGE_POLL_SECONDS = 0.02
# INDEXED BY: the planner would otherwise sort another index. By rowid: a claim and a
# completion read no page of the id index (and after another process's commit, SQLite
# reads again every page it needs).
CLAIM_HEAD = f"""SELECT {CLAIMED_COLUMNS.format(attempts="attempts + 1")}, rowid
    FROM jobs INDEXED BY idx_jobs_ready_free WHERE {READY}"""
CLAIM_HEADS = f"""SELECT {CLAIMED_COLUMNS.format(attempts="attempts + 1")}, rowid
    FROM jobs INDEXED BY idx_jobs_ready_free WHERE {READY_FIRST} LIMIT ?"""
CLAIM_ROW = f"UPDATE jobs SET {CLAIM_SET} WHERE rowid = ?"
COMPLETE_HELD = f"""UPDATE jobs SET {COMPLETE_SET}
    WHERE rowid = ? AND execution_id = ? AND status = 'running'"""
# A step that returned None: the sqlite3 module binds None only after failing to adapt it.
COMPLETE_HELD_NONE = COMPLETE_HELD.replace("result = ?", "result = NULL")
COMPLETED_BY = """SELECT 1 FROM jobs WHERE rowid = ? AND execution_id = ?
    AND status = 'completed'"""
ANY_READY_GATED = """SELECT 1 FROM jobs WHERE status = 'pending' AND pending_deps = 0
    AND gate IS NOT NULL ORDER BY gate LIMIT 1"""
ANY_READY = f"""SELECT 1 WHERE EXISTS (SELECT 1 FROM jobs INDEXED BY idx_jobs_ready_free
    WHERE {READY}) OR EXISTS ({ANY_READY_GATED})"""
CLAIM_GATED = f"""SELECT {CLAIMED_COLUMNS.format(attempts="attempts + 1")}, rowid
    FROM jobs WHERE rowid = ?"""
# One statement is one transaction, and SQLite serializes writers: no child can be added
# between the check and the update. Saves a round trip per job.
COMPLETE_CHILDLESS = f"""UPDATE jobs SET {COMPLETE_SET}
    WHERE rowid = ? AND execution_id = ? AND status = 'running'
    AND NOT EXISTS (SELECT 1 FROM job_dependencies WHERE depends_on = ?)"""


class SQLiteStore(SQLStore):
    """A job store in one SQLite file, shared by threads and processes of one machine."""

    insertion_order = "rowid"
    row_key = "rowid"
    db: SQLiteConnections

    def __init__(
        self, path: str | os.PathLike[str], *, initialize: bool = True, synchronous: str = "NORMAL"
    ) -> None:
        self.db = SQLiteConnections(path, synchronous)
        self.location = self.path = self.db.path
        self.wake = signal_for(self.path)
        conn = self.db.connection()
        try:
            version = self.db.retry_locked(check_version, conn, self.path)
            if not initialize and version != SCHEMA_VERSION:
                raise DatabaseError(
                    f"{self.path} has no current gigq_flow schema; "
                    "open it with initialize=True to create or migrate it"
                )
            if initialize:
                self.db.retry_locked(migrate, conn, self.path)
            self.db.use_wal()
        except sqlite3.Error as exc:
            raise self.db.wrap(exc) from exc

    def claim_row(self, worker_id: str, execution_id: str,
                  settle: Callable[[Tx, Sequence[Any]], ClaimedJob]) -> ClaimedJob | None:
        # After a claim that found nothing, a read first: idle threads take no write lock
        # from those that work.
        conn = self.db.connection()
        if conn.idle and conn.hot.execute(ANY_READY, (now_iso(),)).fetchone() is None:
            return None
        claim = self.db.run(lambda tx: self.claim_in(tx, worker_id, execution_id, settle),
                            patient=True)
        conn.idle = claim is None
        return claim

    def claim_in(self, conn: QueueConnection, worker_id: str, execution_id: str,
                 settle: Callable[[Tx, Sequence[Any]], ClaimedJob]) -> ClaimedJob | None:
        # BEGIN IMMEDIATE holds the write lock: the time read now follows commit order,
        # and the head of the index cannot change between its read and its update (a
        # read then an update by rowid costs less than one UPDATE ... RETURNING). Both
        # run on the connection's kept cursor.
        now = now_iso()
        row = conn.hot.execute(CLAIM_HEAD, (now,)).fetchone()
        gated = self.gated_choice(conn.hot, now, None if row is None else row[-1])
        if gated is not None:
            row = conn.execute(CLAIM_GATED, (gated,)).fetchone()
        if row is None:
            return None
        conn.hot.execute(CLAIM_ROW, (worker_id, now, now, execution_id, row[-1]))
        return settle(conn, row)

    def claim_many_in(self, conn: QueueConnection, worker_id: str,
                      execution_ids: Sequence[str],
                      settlers: Sequence[Callable[[Tx, Sequence[Any]], ClaimedJob]]
                      ) -> list[ClaimedJob]:
        # Without ready gated jobs, the first rows of the index are the claims, read at once.
        if len(execution_ids) < 2 or conn.hot.execute(ANY_READY_GATED).fetchone():
            return super().claim_many_in(conn, worker_id, execution_ids, settlers)
        now = now_iso()
        rows = conn.hot.execute(CLAIM_HEADS, (now, len(execution_ids))).fetchall()
        held = zip(rows, execution_ids, strict=False)  # fewer rows when fewer are ready
        conn.hot.executemany(CLAIM_ROW, [(worker_id, now, now, execution_id, row[-1])
                                         for row, execution_id in held])
        return [settle(conn, row) for row, settle in zip(rows, settlers, strict=False)]

    def complete_many_in(self, conn: QueueConnection,
                         done: Sequence[tuple[ClaimedJob, str | bytes | None]]) -> list[bool]:
        # Every row at once; only when some claim went stale is each one looked at.
        if len(done) < 2:
            return super().complete_many_in(conn, done)
        now = now_iso()
        written = conn.hot.executemany(COMPLETE_HELD_NONE, [
            (now, now, claim.row_key, claim.execution_id) for claim, result in done
            if result is None]).rowcount
        written += conn.hot.executemany(COMPLETE_HELD, [
            (result, now, now, claim.row_key, claim.execution_id) for claim, result in done
            if result is not None]).rowcount
        completed = [True] * len(done)
        if written != len(done):
            completed = [conn.execute(COMPLETED_BY, (claim.row_key, claim.execution_id))
                         .fetchone() is not None for claim, _ in done]
            for (claim, _), recorded in zip(done, completed, strict=True):
                if not recorded:
                    self._note_stale(conn, claim, "completed", now)
        self._release_children_of(conn, [
            claim.id for (claim, _), recorded in zip(done, completed, strict=True) if recorded
        ])
        return completed

    @staticmethod
    def _release_children_of(conn: QueueConnection, parent_ids: Sequence[str]) -> None:
        """Count parents completed together off their children: one write a child, however
        many of its parents are among them."""
        for chunk in chunks(parent_ids):
            children = Counter(child for (child,) in conn.hot.execute(
                f"SELECT job_id FROM job_dependencies WHERE depends_on IN ({marks(chunk)})",
                chunk).fetchall())
            conn.hot.executemany("UPDATE jobs SET pending_deps = pending_deps - ? WHERE id = ?",
                                 [(count, child) for child, count in children.items()])

    def complete_childless(self, claim: ClaimedJob, result: Any, tx: Any = None) -> bool:
        now = now_iso()
        args = (result, now, now, claim.row_key, claim.execution_id, claim.id)
        if tx is not None:
            return tx.hot.execute(COMPLETE_CHILDLESS, args).rowcount == 1
        return self.db.write(COMPLETE_CHILDLESS, args) == 1

    def release_children(self, tx: Tx, job_id: str) -> None:
        # Nothing to announce (other processes see the commit through data_version), so
        # no RETURNING, for which SQLite fills a temporary table.
        tx.execute(RELEASE_CHILDREN, (job_id,))

    def heartbeat(self, instance: str) -> None:
        super().heartbeat(instance)
        self.db.checkpoint_if_large()

    def watch(self, this_process: bool = False) -> tuple[int, int | None]:
        # A thread that waits for this process only opens no connection to take its token.
        return self.wake.generation, None if this_process else self.db.data_version()

    def wait_for_work(self, timeout: float, since: Any = None, *,
                      this_process: bool = False) -> None:
        """Wake on a same-process bump at once, on another process's commit within
        CHANGE_POLL_SECONDS (``PRAGMA data_version``; not with ``this_process``), else
        after ``timeout``."""
        if this_process:
            self.wake.wait(self.wake.generation if since is None else since[0], timeout)
            return
        deadline = time.monotonic() + timeout
        generation, version = since if since is not None else self.watch()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self.wake.wait(generation, min(remaining, CHANGE_POLL_SECONDS)):
                return
            if self.db.data_version() != version:
                return
