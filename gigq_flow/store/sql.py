"""The job semantics, written once in SQL that SQLite and PostgreSQL both run.

A backend subclasses :class:`SQLStore` and supplies a transport (``run`` a write
transaction, ``read`` rows), the claim statement of its dialect and its wake-ups.
Every state change is one transaction. Reads live in :mod:`.sql_reads`, copying a
queue in :mod:`.sql_copy`, shared fragments in :mod:`.sql_common`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from typing import Any, Callable, Sequence

from ..errors import DuplicateJobError, UnknownDependencyError
from ..job import JobStatus
from .base import ClaimedJob, NewJob, WorkflowRecord
from .sql_common import (
    CLAIM_RETURNING,
    CLAIM_SET,
    DESCENDANTS,
    FINAL,
    FINAL_MARKS,
    READY,
    Transport,
    Tx,
    chunks,
    later_iso,
    marks,
    now_iso,
)
from .sql_copy import SQLCopy
from .sql_reads import SQLReads
from .wakeup import WakeSignal

logger = logging.getLogger(__name__)

__all__ = ["CLAIM_RETURNING", "CLAIM_SET", "READY", "SQLStore", "Tx"]


class SQLStore(SQLReads, SQLCopy):
    """The Store contract over a SQL transport; see :class:`~gigq_flow.store.base.Store`."""

    location: str
    db: Transport
    wake: WakeSignal
    #: The column that orders rows created in the same microsecond by insertion.
    insertion_order = "rowid"
    #: The column that orders a job's attempts started in the same microsecond.
    execution_order = "id"
    #: Suffixes that lock the rows a transaction reads before acting on them. SQLite's
    #: write transactions are serialized (BEGIN IMMEDIATE) and need none; a server
    #: backend locks the parents a submit counts (against a concurrent completion or
    #: failure) and the overdue jobs it expires (against a concurrent expiry or claim).
    lock_shared = ""
    lock_skip = ""

    # -- hooks for the backend --------------------------------------------------------------
    def claim_row(self, tx: Tx, worker_id: str, execution_id: str, lease_timeout: float,
                  stamp: Callable[[], tuple[str, float]]) -> tuple[Any, str | None]:
        """Mark the best ready job running (CLAIM_SET); return its CLAIM_RETURNING row (or
        None) and the timestamp written as its start.

        ``stamp()`` reads the clock (ISO time, epoch seconds). The start must be read once
        the claim is ordered after every commit it sees (the write lock, a row lock), so
        that a job never starts before its parents' ``completed_at``.
        """
        raise NotImplementedError

    def blob(self, value: str | bytes | None) -> Any:
        """An encoded payload as the driver stores it."""
        return value

    def announce(self, tx: Tx) -> None:
        """Tell other processes, inside the transaction, that work may be ready."""

    # -- submit -------------------------------------------------------------------------------
    def submit(self, jobs: Sequence[NewJob], workflow: WorkflowRecord | None = None) -> None:
        new_ids = [job.id for job in jobs]
        outside = sorted({dep for job in jobs for dep in job.dependencies} - set(new_ids))

        def body(tx: Tx) -> None:
            taken = self._statuses(tx, new_ids)
            if taken:
                raise DuplicateJobError(
                    f"job {next(iter(taken))} is already in the queue; "
                    "create a new Job instead of submitting one twice"
                )
            # Locked until commit: a parent cannot complete or fail between this read and
            # the insertion of its children's edges (its counters would miss them).
            parent_status = self._statuses(tx, outside, self.lock_shared)
            missing = [dep for dep in outside if dep not in parent_status]
            if missing:
                names = {dep: job.name for job in jobs for dep in job.dependencies}
                raise UnknownDependencyError(
                    f"job {names[missing[0]]!r} depends on {missing[0]}, which is neither "
                    "submitted with it nor in the queue; submit the parent first"
                )
            if workflow is not None:
                tx.execute(
                    "INSERT INTO workflows (id, name, created_at) VALUES (?, ?, ?)",
                    (workflow.id, workflow.name, workflow.created_at),
                )
            self._insert_jobs(tx, jobs, parent_status, workflow)
            now = now_iso()
            for parent, status in sorted(parent_status.items()):
                if status in FINAL or status == JobStatus.UPSTREAM_FAILED.value:
                    self._propagate_failure(tx, parent, now)
            self.announce(tx)

        self.db.run(body)
        self.wake.bump()

    @staticmethod
    def _statuses(tx: Tx, ids: Sequence[str], lock: str = "") -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in chunks(sorted(ids)):
            rows = tx.execute(
                f"SELECT id, status FROM jobs WHERE id IN ({marks(chunk)}) ORDER BY id {lock}",
                chunk,
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    def _insert_jobs(
        self, tx: Tx, jobs: Sequence[NewJob], parent_status: dict[str, str],
        workflow: WorkflowRecord | None,
    ) -> None:
        now = now_iso()
        completed = JobStatus.COMPLETED.value
        tx.executemany(
            """INSERT INTO jobs (id, name, function_name, function_module, params, priority,
                   dependencies, max_attempts, timeout, description, status, created_at,
                   updated_at, attempts, pass_parent_results, retry_delay, workflow_id,
                   pending_deps, serializer)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?, ?, ?, ?, ?)""",
            [
                (
                    job.id, job.name, job.function_name, job.function_module,
                    self.blob(job.params), job.priority, json.dumps(list(job.dependencies)),
                    job.max_attempts, job.timeout, job.description, job.created_at, now,
                    None if job.pass_parent_results is None else int(job.pass_parent_results),
                    job.retry_delay, workflow.id if workflow else None,
                    sum(parent_status.get(dep) != completed for dep in job.dependencies),
                    job.serializer,
                )
                for job in jobs
            ],
        )
        edges = [(job.id, dep, i) for job in jobs for i, dep in enumerate(job.dependencies)]
        if edges:
            tx.executemany(
                "INSERT INTO job_dependencies (job_id, depends_on, position) VALUES (?, ?, ?)",
                edges,
            )

    # -- the worker's path --------------------------------------------------------------------
    def claim(self, worker_id: str, lease_timeout: float) -> ClaimedJob | None:
        execution_id = str(uuid.uuid4())

        def stamp() -> tuple[str, float]:
            return now_iso(), time.time()

        def body(tx: Tx) -> Any:
            row, now = self.claim_row(tx, worker_id, execution_id, lease_timeout, stamp)
            if row is not None:
                tx.execute(
                    "INSERT INTO job_executions (id, job_id, worker_id, status, started_at) "
                    "VALUES (?, ?, ?, 'running', ?)",
                    (execution_id, row[0], worker_id, now),
                )
            return row

        row = self.db.run(body)
        if row is None:
            return None
        pass_parent = row[8]
        return ClaimedJob(
            id=row[0], name=row[1], function_module=row[2], function_name=row[3],
            params=row[4], attempts=row[5], max_attempts=row[6], retry_delay=row[7] or 0,
            pass_parent_results=None if pass_parent is None else bool(pass_parent),
            has_dependencies=bool(row[9]), serializer=row[10] or "json",
            execution_id=execution_id, worker_id=worker_id,
        )

    def complete(self, claim: ClaimedJob, result: str | bytes | None) -> bool:
        stored = self.blob(result)

        def body(tx: Tx) -> bool:
            now = now_iso()
            current = tx.execute(
                """UPDATE jobs SET status = 'completed', result = ?, error = NULL,
                       completed_at = ?, updated_at = ?, timeout_at = NULL,
                       lease_expires_at = NULL
                   WHERE id = ? AND execution_id = ? AND status = 'running'""",
                (stored, now, now, claim.id, claim.execution_id),
            ).rowcount == 1
            if current:
                counts = tx.execute(
                    "UPDATE jobs SET pending_deps = pending_deps - 1 WHERE id IN "
                    "(SELECT job_id FROM job_dependencies WHERE depends_on = ?) "
                    "RETURNING pending_deps",
                    (claim.id,),
                ).fetchall()
                if any(row[0] == 0 for row in counts):  # a child became ready
                    self.announce(tx)
            self._close_execution(tx, claim, current, "completed", now, stored, None)
            return current

        current = self.db.run(body)
        if current:
            self.wake.bump()
        return current

    def fail(self, claim: ClaimedJob, error: str, *, retry: bool) -> bool:
        def body(tx: Tx) -> bool:
            now, retry_after = now_iso(), later_iso(claim.retry_delay)
            if retry:
                current = tx.execute(
                    """UPDATE jobs SET status = 'pending', error = ?, updated_at = ?,
                           worker_id = NULL, retry_after = ?, timeout_at = NULL,
                           lease_expires_at = NULL
                       WHERE id = ? AND execution_id = ? AND status = 'running'""",
                    (error, now, retry_after, claim.id, claim.execution_id),
                ).rowcount == 1
                if current:
                    self.announce(tx)
            else:
                current = tx.execute(
                    """UPDATE jobs SET status = 'failed', error = ?, updated_at = ?,
                           completed_at = ?, timeout_at = NULL,
                           lease_expires_at = NULL
                       WHERE id = ? AND execution_id = ? AND status = 'running'""",
                    (error, now, now, claim.id, claim.execution_id),
                ).rowcount == 1
                if current:
                    self._propagate_failure(tx, claim.id, now)
            self._close_execution(tx, claim, current, "failed", now, None, error)
            return current

        current = self.db.run(body)
        if current:
            self.wake.bump()
        return current

    @staticmethod
    def _close_execution(
        tx: Tx, claim: ClaimedJob, current: bool, status: str, now: str, result: Any,
        error: str | None,
    ) -> None:
        if current:
            tx.execute(
                "UPDATE job_executions SET status = ?, completed_at = ?, result = ?, error = ? "
                "WHERE job_id = ? AND id = ?",
                (status, now, result, error, claim.id, claim.execution_id),
            )
            return
        logger.warning("job %s: attempt %s ended after the job was reclaimed; its outcome is "
                       "discarded", claim.id, claim.execution_id)
        tx.execute(
            "UPDATE job_executions SET completed_at = COALESCE(completed_at, ?), "
            "error = COALESCE(error || '; ', '') || ? WHERE job_id = ? AND id = ?",
            (now, f"stale: attempt ended as {status} after the job was reclaimed; "
                  "outcome discarded", claim.id, claim.execution_id),
        )

    def expire_overdue(self) -> int:
        """Running jobs past their timeout, or whose worker stopped renewing its lease, are
        requeued while attempts remain, else end timeout (or failed, for a lost worker)."""
        clock = time.time()
        overdue_sql = (
            "SELECT id, attempts, max_attempts, retry_delay, timeout, worker_id, "
            "CASE WHEN timeout_at < ? THEN 1 ELSE 0 END FROM jobs WHERE status = 'running' "
            "AND (timeout_at < ? OR lease_expires_at < ?)"
        )
        if not self.db.read(overdue_sql, (clock, clock, clock)):
            return 0

        def body(tx: Tx) -> int:
            now = now_iso()
            overdue = tx.execute(f"{overdue_sql} {self.lock_skip}", (clock, clock, clock)).fetchall()
            for job_id, attempts, max_attempts, retry_delay, timeout, worker, timed_out in overdue:
                if timed_out:
                    error = f"Job timed out after {timeout} seconds"
                    execution_status = final = "timeout"
                else:
                    error = f"worker {worker} stopped renewing its lease (presumed dead)"
                    execution_status, final = "lost", "failed"
                logger.warning("job %s: %s", job_id, error)
                if attempts < max_attempts:
                    tx.execute(
                        "UPDATE jobs SET status = 'pending', error = ?, updated_at = ?, "
                        "worker_id = NULL, retry_after = ?, timeout_at = NULL, "
                        "lease_expires_at = NULL, execution_id = NULL WHERE id = ?",
                        (error, now, later_iso(retry_delay), job_id),
                    )
                else:
                    tx.execute(
                        "UPDATE jobs SET status = ?, error = ?, updated_at = ?, "
                        "completed_at = ?, worker_id = NULL, timeout_at = NULL, "
                        "lease_expires_at = NULL, execution_id = NULL WHERE id = ?",
                        (final, error, now, now, job_id),
                    )
                    self._propagate_failure(tx, job_id, now)
                tx.execute(
                    "UPDATE job_executions SET status = ?, completed_at = ?, error = ? "
                    "WHERE job_id = ? AND status = 'running'",
                    (execution_status, now, error, job_id),
                )
            self.announce(tx)
            return len(overdue)

        expired = self.db.run(body)
        self.wake.bump()
        return expired

    def release(self, claims: Sequence[ClaimedJob]) -> int:
        """Return jobs a stopping worker could not finish to the queue; the interrupted
        attempt does not count. Returns how many were still this worker's."""

        def body(tx: Tx) -> int:
            now = now_iso()
            released = 0
            for claim in claims:
                if tx.execute(
                    "UPDATE jobs SET status = 'pending', "
                    "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
                    "worker_id = NULL, execution_id = NULL, timeout_at = NULL, "
                    "lease_expires_at = NULL, updated_at = ? "
                    "WHERE id = ? AND execution_id = ? AND status = 'running'",
                    (now, claim.id, claim.execution_id),
                ).rowcount:
                    released += 1
                    tx.execute(
                        "UPDATE job_executions SET status = 'interrupted', completed_at = ?, "
                        "error = 'worker shut down before the job finished; returned to the "
                        "queue' WHERE job_id = ? AND id = ?",
                        (now, claim.id, claim.execution_id),
                    )
            self.announce(tx)
            return released

        released = self.db.run(body)
        self.wake.bump()
        return released

    # -- workers ------------------------------------------------------------------------------
    def register_worker(self, worker_id: str, concurrency: int, lease_timeout: float) -> None:
        self.db.run(lambda tx: tx.execute(
            """INSERT INTO workers (id, host, pid, concurrency, lease_timeout, started_at,
                   last_heartbeat, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
               ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                   concurrency = excluded.concurrency, lease_timeout = excluded.lease_timeout,
                   started_at = excluded.started_at, last_heartbeat = excluded.last_heartbeat,
                   stopped_at = NULL""",
            (worker_id, socket.gethostname(), os.getpid(), concurrency, lease_timeout,
             now_iso(), time.time()),
        ))

    def heartbeat(self, worker_id: str, execution_ids: Sequence[str], lease_timeout: float) -> int:
        """Renew the leases of this worker's running attempts; returns how many it still holds."""
        clock = time.time()
        ids = sorted(execution_ids)

        def body(tx: Tx) -> int:
            tx.execute("UPDATE workers SET last_heartbeat = ? WHERE id = ?", (clock, worker_id))
            renewed = 0
            for chunk in chunks(ids):
                renewed += tx.execute(
                    f"UPDATE jobs SET lease_expires_at = ? WHERE status = 'running' "
                    f"AND execution_id IN ({marks(chunk)})",
                    (clock + lease_timeout, *chunk),
                ).rowcount
            return renewed

        return self.db.run(body)

    def unregister_worker(self, worker_id: str) -> None:
        self.db.run(lambda tx: tx.execute(
            "UPDATE workers SET stopped_at = ? WHERE id = ?", (now_iso(), worker_id)))

    # -- failure propagation, cancel, requeue ----------------------------------------------
    def _propagate_failure(self, tx: Tx, job_id: str, now: str) -> None:
        """Every pending descendant of ``job_id`` becomes upstream_failed.

        Without serialized writes, the statement may wait for a submit that locked a
        descendant and added children its snapshot cannot see: it runs again until it
        changes nothing."""
        name, status = tx.execute("SELECT name, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        while tx.execute(
            DESCENDANTS + """UPDATE jobs SET status = 'upstream_failed', error = ?,
                   updated_at = ?, completed_at = ?
               WHERE id IN (SELECT id FROM down) AND status = 'pending'""",
            (job_id, f"upstream job {name!r} ({job_id}) ended {status}", now, now),
        ).rowcount and self.lock_shared:
            pass

    def cancel(self, job_id: str) -> bool:

        def body(tx: Tx) -> bool:
            now = now_iso()
            cancelled = tx.execute(
                "UPDATE jobs SET status = 'cancelled', updated_at = ?, completed_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (now, now, job_id),
            ).rowcount == 1
            if cancelled:
                self._propagate_failure(tx, job_id, now)
            return cancelled

        return self.db.run(body)

    def requeue(self, job_id: str) -> bool:

        def body(tx: Tx) -> bool:
            now = now_iso()
            requeued = tx.execute(
                f"""UPDATE jobs SET status = 'pending', attempts = 0, error = NULL,
                        retry_after = NULL, completed_at = NULL, updated_at = ?,
                        execution_id = NULL, lease_expires_at = NULL
                    WHERE id = ? AND status IN ({FINAL_MARKS})""",
                (now, job_id, *FINAL),
            ).rowcount == 1
            if requeued:
                self._restore_descendants(tx, job_id, now)
                self.announce(tx)
            return requeued

        requeued = self.db.run(body)
        if requeued:
            self.wake.bump()
        return requeued

    def _restore_descendants(self, tx: Tx, job_id: str, now: str) -> None:
        """Undo a propagation, then redo it from every parent of the requeued job and of
        the restored jobs that still ended badly (failed, timed out, cancelled, or
        upstream_failed through another failed ancestor)."""
        restored = [
            row[0] for row in tx.execute(
                DESCENDANTS + "SELECT id FROM jobs WHERE id IN (SELECT id FROM down) "
                "AND status = 'upstream_failed'",
                (job_id,),
            )
        ]
        for chunk in chunks(restored):
            tx.execute(
                f"UPDATE jobs SET status = 'pending', error = NULL, completed_at = NULL, "
                f"updated_at = ? WHERE id IN ({marks(chunk)})",
                (now, *chunk),
            )
        still_failed: set[str] = set()
        for chunk in chunks([job_id, *restored]):
            still_failed.update(
                row[0] for row in tx.execute(
                    f"""SELECT DISTINCT p.id FROM job_dependencies d
                        JOIN jobs p ON p.id = d.depends_on
                        WHERE d.job_id IN ({marks(chunk)})
                          AND p.status IN ({FINAL_MARKS}, 'upstream_failed')""",
                    (*chunk, *FINAL),
                )
            )
        for parent in sorted(still_failed):
            self._propagate_failure(tx, parent, now)

    def clear_completed(self, before_timestamp: str | None = None) -> int:
        condition = "status IN ('completed', 'cancelled')"
        args: tuple[Any, ...] = ()
        if before_timestamp:
            condition += " AND completed_at < ?"
            args = (before_timestamp,)

        def body(tx: Tx) -> int:
            tx.execute(
                f"DELETE FROM job_executions WHERE job_id IN (SELECT id FROM jobs WHERE {condition})",
                args,
            )
            tx.execute(
                f"DELETE FROM job_dependencies WHERE job_id IN "
                f"(SELECT id FROM jobs WHERE {condition})",
                args,
            )
            return tx.execute(f"DELETE FROM jobs WHERE {condition}", args).rowcount

        return self.db.run(body)

    def wake_all(self) -> None:
        self.wake.bump()

    def close(self) -> None:
        self.db.close()
