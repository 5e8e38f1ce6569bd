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
from typing import Any, Callable, Sequence

from ..errors import DuplicateJobError, UnknownDependencyError
from ..job import DEFAULT_TIMEOUT, JobStatus
from .base import ClaimedJob, NewJob, WorkflowRecord
from .sql_common import (
    CLAIM_RETURNING,
    CLAIM_SET,
    CLAIMED_COLUMNS,
    COMPLETE_SET,
    DESCENDANTS,
    FINAL,
    FINAL_MARKS,
    HELD,
    READY,
    RELEASE_CHILDREN,
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

__all__ = [
    "CLAIM_RETURNING", "CLAIM_SET", "CLAIMED_COLUMNS", "COMPLETE_SET", "HELD", "READY", "SQLStore",
    "Tx",
]


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
    #: failure), the lost workers it reclaims (against a concurrent reclaim) and their
    #: running jobs (against a concurrent completion).
    lock_shared = ""
    lock_skip = ""
    lock_update = ""

    # -- hooks for the backend --------------------------------------------------------------
    def claim_row(self, tx: Tx, worker_id: str, execution_id: str) -> Any:
        """Mark the best ready job running (CLAIM_SET); return its CLAIMED_COLUMNS
        followed by the job's row key, or None when no job is ready.

        The start time must be read once the claim is ordered after every commit it sees
        (the write lock, a row lock), so that a job never starts before its parents'
        ``completed_at``.
        """
        raise NotImplementedError

    def complete_childless(self, claim: ClaimedJob, result: Any) -> bool:
        """Complete a job that has no children in one statement, if the backend can check
        and write atomically; False when it did not (children, a stale claim, or no way)."""
        return False

    def blob(self, value: str | bytes | None) -> Any:
        """An encoded payload as the driver stores it."""
        return value

    def announce(self, tx: Tx) -> None:
        """Tell other processes, inside the transaction, that work may be ready."""

    def _run_and_wake(self, body: Callable[[Tx], Any]) -> Any:
        """Run ``body`` in a write transaction; wake this process's idle threads when it
        returns something true (it changed a job)."""
        changed = self.db.run(body)
        if changed:
            self.wake.bump()
        return changed

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
    # A job row holds its latest attempt (``execution_id``, ``worker_id``, ``started_at``,
    # ``completed_at``, ``result``, ``error``) while it runs and once it completed or failed
    # for good. An attempt that ends any other way (a retry, a timeout, a lost worker, a
    # shutdown, a requeue) moves to ``job_executions``: the success path writes no
    # attempt row. Every write of an attempt is fenced by its ``execution_id``.
    def claim(self, worker_id: str, execution_id: str) -> ClaimedJob | None:
        row = self.db.run(lambda tx: self.claim_row(tx, worker_id, execution_id), patient=True)
        if row is None:
            return None
        pass_parent = row[8]
        return ClaimedJob(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] or 0,
            None if pass_parent is None else bool(pass_parent), bool(row[9]), row[10] or "json",
            row[11] or DEFAULT_TIMEOUT, row[12], execution_id, worker_id,
        )

    def complete(self, claim: ClaimedJob, result: str | bytes | None) -> bool:
        stored = self.blob(result)
        if self.complete_childless(claim, stored):
            self.wake.bump()
            return True

        def body(tx: Tx) -> bool:
            now = now_iso()
            if tx.execute(f"UPDATE jobs SET {COMPLETE_SET} WHERE {HELD}",
                          (stored, now, now, claim.id, claim.execution_id)).rowcount != 1:
                self._note_stale(tx, claim, "completed", now)
                return False
            # A statement of its own: under a server's read-committed isolation it sees
            # an edge that a submit, which held this row locked, committed meanwhile.
            self.release_children(tx, claim.id)
            return True

        return self._run_and_wake(body)

    def release_children(self, tx: Tx, job_id: str) -> None:
        """Count a completed parent off each of its children; announce the children that
        became ready."""
        counts = tx.execute(f"{RELEASE_CHILDREN} RETURNING pending_deps", (job_id,)).fetchall()
        if any(count[0] == 0 for count in counts):
            self.announce(tx)

    def fail(self, claim: ClaimedJob, error: str, *, retry: bool) -> bool:
        def body(tx: Tx) -> bool:
            now = now_iso()
            if retry:
                if not self._archive_attempt(tx, claim.id, claim.execution_id, "failed", now,
                                             error):
                    self._note_stale(tx, claim, "failed", now)
                    return False
                self._back_to_pending(tx, claim.id, error, now, claim.retry_delay)
                self.announce(tx)
                return True
            if tx.execute(
                f"UPDATE jobs SET status = 'failed', error = ?, updated_at = ?, completed_at = ? "
                f"WHERE {HELD}",
                (error, now, now, claim.id, claim.execution_id),
            ).rowcount != 1:
                self._note_stale(tx, claim, "failed", now)
                return False
            self._propagate_failure(tx, claim.id, now)
            return True

        return self._run_and_wake(body)

    def _archive_attempt(self, tx: Tx, job_id: str, execution_id: str, status: str, now: str,
                         error: str | None) -> bool:
        """Move the attempt a running job row holds to ``job_executions``, ended with
        ``status``; False when the row no longer holds it (the attempt went stale)."""
        held = tx.execute(
            f"SELECT worker_id, started_at FROM jobs WHERE {HELD} {self.lock_update}",
            (job_id, execution_id),
        ).fetchone()
        if held is None:
            return False
        tx.execute(
            "INSERT INTO job_executions (id, job_id, worker_id, status, started_at, completed_at, "
            "result, error) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            (execution_id, job_id, held[0], status, held[1], now, error),
        )
        return True

    @staticmethod
    def _note_stale(tx: Tx, claim: ClaimedJob, status: str, now: str) -> None:
        """An attempt ended after its job was reclaimed: keep the job, note it on the attempt."""
        logger.warning("job %s: attempt %s ended after the job was reclaimed; its outcome is "
                       "discarded", claim.id, claim.execution_id)
        tx.execute(
            "UPDATE job_executions SET completed_at = COALESCE(completed_at, ?), "
            "error = COALESCE(error || '; ', '') || ? WHERE job_id = ? AND id = ?",
            (now, f"stale: attempt ended as {status} after the job was reclaimed; "
                  "outcome discarded", claim.id, claim.execution_id),
        )

    @staticmethod
    def _back_to_pending(tx: Tx, job_id: str, error: str, now: str, retry_delay: float) -> None:
        """A job whose attempt ended (already archived) waits ``retry_delay`` for the next."""
        tx.execute(
            "UPDATE jobs SET status = 'pending', error = ?, updated_at = ?, "
            "worker_id = NULL, execution_id = NULL, retry_after = ? WHERE id = ?",
            (error, now, later_iso(retry_delay), job_id),
        )

    def _end_attempt(self, tx: Tx, job_id: str, execution_id: str, attempt_status: str,
                     final_status: str, error: str, now: str) -> bool:
        """End a running attempt its worker did not finish: requeue the job while attempts
        remain, else end it ``final_status``. False when the attempt had already ended."""
        if not self._archive_attempt(tx, job_id, execution_id, attempt_status, now, error):
            return False
        attempts, max_attempts, retry_delay = tx.execute(
            "SELECT attempts, max_attempts, retry_delay FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        logger.warning("job %s: %s", job_id, error)
        if attempts < max_attempts:
            self._back_to_pending(tx, job_id, error, now, retry_delay)
        else:
            tx.execute(
                "UPDATE jobs SET status = ?, error = ?, updated_at = ?, completed_at = ?, "
                "worker_id = NULL, execution_id = NULL WHERE id = ?",
                (final_status, error, now, now, job_id),
            )
            self._propagate_failure(tx, job_id, now)
        return True

    def time_out(self, claim: ClaimedJob) -> bool:
        def body(tx: Tx) -> bool:
            ended = self._end_attempt(
                tx, claim.id, claim.execution_id, "timeout", "timeout",
                f"Job timed out after {claim.timeout:g} seconds", now_iso(),
            )
            if ended:
                self.announce(tx)
            return ended

        return self._run_and_wake(body)

    def reclaim_lost(self) -> int:
        """Running jobs of workers whose heartbeat stopped for longer than their
        lease_timeout are requeued while attempts remain, else failed."""
        clock = time.time()
        lost_sql = (
            "SELECT instance, id FROM workers WHERE stopped_at IS NULL "
            "AND reclaimed_at IS NULL AND last_heartbeat + lease_timeout < ?"
        )
        if not self.db.read(lost_sql, (clock,)):
            return 0

        def body(tx: Tx) -> int:
            now = now_iso()
            reclaimed = 0
            for instance, worker in tx.execute(f"{lost_sql} {self.lock_skip}", (clock,)).fetchall():
                tx.execute("UPDATE workers SET reclaimed_at = ? WHERE instance = ?", (now, instance))
                # No index leads to running jobs: this reads the table, as rarely as workers die.
                running = tx.execute(
                    f"SELECT id, execution_id FROM jobs WHERE status = 'running' "
                    f"AND execution_id LIKE ? {self.lock_update}",
                    (f"{instance}-%",),
                ).fetchall()
                error = f"worker {worker} stopped renewing its lease (presumed dead)"
                for job_id, execution_id in running:
                    reclaimed += self._end_attempt(tx, job_id, execution_id, "lost", "failed",
                                                   error, now)
            self.announce(tx)
            return reclaimed

        reclaimed = self.db.run(body)
        self.wake.bump()
        return reclaimed

    def release(self, claims: Sequence[ClaimedJob]) -> int:
        """Return jobs a stopping worker could not finish to the queue; the interrupted
        attempt does not count. Returns how many were still this worker's."""

        def body(tx: Tx) -> int:
            now = now_iso()
            released = 0
            for claim in claims:
                if not self._archive_attempt(
                    tx, claim.id, claim.execution_id, "interrupted", now,
                    "worker shut down before the job finished; returned to the queue",
                ):
                    continue
                released += 1
                tx.execute(
                    "UPDATE jobs SET status = 'pending', "
                    "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
                    "worker_id = NULL, execution_id = NULL, updated_at = ? WHERE id = ?",
                    (now, claim.id),
                )
            self.announce(tx)
            return released

        released = self.db.run(body)
        self.wake.bump()
        return released

    # -- workers ------------------------------------------------------------------------------
    def register_worker(self, instance: str, worker_id: str, concurrency: int,
                        lease_timeout: float) -> None:
        self.db.run(lambda tx: tx.execute(
            """INSERT INTO workers (instance, id, host, pid, concurrency, lease_timeout,
                   started_at, last_heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (instance) DO UPDATE SET last_heartbeat = excluded.last_heartbeat,
                   stopped_at = NULL, reclaimed_at = NULL""",
            (instance, worker_id, socket.gethostname(), os.getpid(), concurrency, lease_timeout,
             now_iso(), time.time()),
        ))

    def heartbeat(self, instance: str) -> None:
        """Renew the lease of every running attempt of the worker ``instance``."""
        self.db.run(lambda tx: tx.execute(
            "UPDATE workers SET last_heartbeat = ?, reclaimed_at = NULL WHERE instance = ?",
            (time.time(), instance),
        ))

    def unregister_worker(self, instance: str) -> None:
        self.db.run(lambda tx: tx.execute(
            "UPDATE workers SET stopped_at = ? WHERE instance = ?", (now_iso(), instance)))

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
            tx.execute(  # the failed attempt the row holds becomes history
                f"""INSERT INTO job_executions (id, job_id, worker_id, status, started_at,
                        completed_at, result, error)
                    SELECT execution_id, id, worker_id, status, started_at, completed_at,
                        NULL, error FROM jobs
                    WHERE id = ? AND execution_id IS NOT NULL AND status IN ({FINAL_MARKS})""",
                (job_id, *FINAL),
            )
            requeued = tx.execute(
                f"""UPDATE jobs SET status = 'pending', attempts = 0, error = NULL,
                        retry_after = NULL, completed_at = NULL, updated_at = ?,
                        worker_id = NULL, execution_id = NULL
                    WHERE id = ? AND status IN ({FINAL_MARKS})""",
                (now, job_id, *FINAL),
            ).rowcount == 1
            if requeued:
                self._restore_descendants(tx, job_id, now)
                self.announce(tx)
            return requeued

        return self._run_and_wake(body)

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
