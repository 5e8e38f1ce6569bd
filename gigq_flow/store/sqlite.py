"""The embedded backend: the job semantics over one SQLite file.

The file, its connections and its transactions are :mod:`.sqlite_connection`'s; this
module holds every statement that gives a job its meaning (claim, complete, fail,
leases, propagation). Each state change is one transaction.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Sequence, TypeVar

from ..errors import DatabaseError, DuplicateJobError, UnknownDependencyError
from ..job import FINAL_FAILURES, JobStatus
from .base import ClaimedJob, NewJob, ParentResult, Row, WorkflowRecord
from .sqlite_connection import SQLiteConnections
from .sqlite_schema import SCHEMA_VERSION, check_version, migrate
from .wakeup import signal_for

logger = logging.getLogger(__name__)

CHANGE_POLL_SECONDS = 0.02
_SQL_CHUNK = 500

T = TypeVar("T")

_FINAL = tuple(s.value for s in FINAL_FAILURES)
_DESCENDANTS = """
    WITH RECURSIVE down(id) AS (
        SELECT job_id FROM job_dependencies WHERE depends_on = :root
        UNION SELECT d.job_id FROM job_dependencies d JOIN down ON d.depends_on = down.id)
"""


def now_iso() -> str:
    return datetime.now().isoformat(timespec="microseconds")


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _SQL_CHUNK):
        yield items[start : start + _SQL_CHUNK]


class SQLiteStore:
    """A job store in one SQLite file (see the module docstring for the policy)."""

    def __init__(
        self, path: str | os.PathLike[str], *, initialize: bool = True, synchronous: str = "NORMAL"
    ) -> None:
        self.db = SQLiteConnections(path, synchronous)
        self.location = self.path = self.db.path
        self._wake = signal_for(self.path)
        conn = self.db.connection()
        try:
            if initialize:
                self.db.retry_locked(lambda: migrate(conn, self.path))
            elif check_version(conn, self.path) != SCHEMA_VERSION:
                raise DatabaseError(
                    f"{self.path} has no current gigq_flow schema; "
                    "open it with initialize=True to create or migrate it"
                )
        except sqlite3.Error as exc:
            raise self.db.wrap(exc) from exc

    # -- submit ---------------------------------------------------------------------------
    def submit(self, jobs: Sequence[NewJob], workflow: WorkflowRecord | None = None) -> None:
        new_ids = {job.id for job in jobs}
        outside = list({dep for job in jobs for dep in job.dependencies} - new_ids)
        with self.db.transaction() as conn:
            taken = self._statuses(conn, list(new_ids))
            if taken:
                raise DuplicateJobError(
                    f"job {next(iter(taken))} is already in the queue; "
                    "create a new Job instead of submitting one twice"
                )
            parent_status = self._statuses(conn, outside)
            missing = [dep for dep in outside if dep not in parent_status]
            if missing:
                names = {dep: job.name for job in jobs for dep in job.dependencies}
                raise UnknownDependencyError(
                    f"job {names[missing[0]]!r} depends on {missing[0]}, which is neither "
                    "submitted with it nor in the queue; submit the parent first"
                )
            if workflow is not None:
                conn.execute(
                    "INSERT INTO workflows (id, name, created_at) VALUES (?, ?, ?)",
                    (workflow.id, workflow.name, workflow.created_at),
                )
            self._insert_jobs(conn, jobs, parent_status, workflow)
            failed_parents = [
                dep for dep, status in parent_status.items()
                if status in _FINAL or status == JobStatus.UPSTREAM_FAILED.value
            ]
            for parent in failed_parents:
                self._propagate_failure(conn, parent, now_iso())
        self._wake.bump()

    @staticmethod
    def _statuses(conn: sqlite3.Connection, ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT id, status FROM jobs WHERE id IN ({marks})", chunk)
            found.update((row[0], row[1]) for row in rows)
        return found

    @staticmethod
    def _insert_jobs(
        conn: sqlite3.Connection,
        jobs: Sequence[NewJob],
        parent_status: dict[str, str],
        workflow: WorkflowRecord | None,
    ) -> None:
        now = now_iso()
        completed = JobStatus.COMPLETED.value
        conn.executemany(
            """INSERT INTO jobs (id, name, function_name, function_module, params, priority,
                   dependencies, max_attempts, timeout, description, status, created_at,
                   updated_at, attempts, pass_parent_results, retry_delay, workflow_id,
                   pending_deps, serializer)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?, ?, ?, ?, ?)""",
            [
                (
                    job.id, job.name, job.function_name, job.function_module, job.params,
                    job.priority, json.dumps(list(job.dependencies)), job.max_attempts,
                    job.timeout, job.description, job.created_at, now,
                    None if job.pass_parent_results is None else int(job.pass_parent_results),
                    job.retry_delay, workflow.id if workflow else None,
                    sum(parent_status.get(dep) != completed for dep in job.dependencies),
                    job.serializer,
                )
                for job in jobs
            ],
        )
        conn.executemany(
            "INSERT INTO job_dependencies (job_id, depends_on, position) VALUES (?, ?, ?)",
            [(job.id, dep, i) for job in jobs for i, dep in enumerate(job.dependencies)],
        )

    # -- the worker's path ----------------------------------------------------------------
    def claim(self, worker_id: str, lease_timeout: float) -> ClaimedJob | None:
        now = now_iso()
        execution_id = str(uuid.uuid4())
        with self.db.transaction() as conn:
            row = conn.execute(
                """UPDATE jobs SET status = 'running', worker_id = :worker, started_at = :now,
                       updated_at = :now, attempts = attempts + 1, execution_id = :execution,
                       timeout_at = :clock + COALESCE(timeout, 300),
                       lease_expires_at = :clock + :lease
                   WHERE id = (SELECT id FROM jobs INDEXED BY idx_jobs_ready
                               WHERE status = 'pending' AND pending_deps = 0
                                 AND (retry_after IS NULL OR retry_after <= :now)
                               ORDER BY priority DESC, created_at LIMIT 1)
                   RETURNING id, name, function_module, function_name, params, attempts,
                       max_attempts, retry_delay, pass_parent_results,
                       dependencies NOT IN ('[]', '', 'null'), serializer""",
                {"worker": worker_id, "now": now, "execution": execution_id, "clock": time.time(),
                 "lease": lease_timeout},
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "INSERT INTO job_executions (id, job_id, worker_id, status, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                (execution_id, row[0], worker_id, now),
            )
        pass_parent = row[8]
        return ClaimedJob(
            id=row[0], name=row[1], function_module=row[2], function_name=row[3],
            params=row[4], attempts=row[5], max_attempts=row[6], retry_delay=row[7] or 0,
            pass_parent_results=None if pass_parent is None else bool(pass_parent),
            has_dependencies=bool(row[9]), serializer=row[10] or "json",
            execution_id=execution_id, worker_id=worker_id,
        )

    def complete(self, claim: ClaimedJob, result: str | bytes | None) -> bool:
        now = now_iso()
        with self.db.transaction() as conn:
            current = conn.execute(
                """UPDATE jobs SET status = 'completed', result = ?, error = NULL,
                       completed_at = ?, updated_at = ?, worker_id = NULL, timeout_at = NULL,
                       lease_expires_at = NULL
                   WHERE id = ? AND execution_id = ? AND status = 'running'""",
                (result, now, now, claim.id, claim.execution_id),
            ).rowcount == 1
            if current:
                conn.execute(
                    "UPDATE jobs SET pending_deps = pending_deps - 1 WHERE id IN "
                    "(SELECT job_id FROM job_dependencies WHERE depends_on = ?)",
                    (claim.id,),
                )
            self._close_execution(conn, claim, current, "completed", now, result, None)
        if current:
            self._wake.bump()
        return current

    def fail(self, claim: ClaimedJob, error: str, *, retry: bool) -> bool:
        now_dt = datetime.now()
        now = now_dt.isoformat(timespec="microseconds")
        with self.db.transaction() as conn:
            if retry:
                retry_after = (
                    (now_dt + timedelta(seconds=claim.retry_delay)).isoformat(timespec="microseconds")
                    if claim.retry_delay > 0 else None
                )
                current = conn.execute(
                    """UPDATE jobs SET status = 'pending', error = ?, updated_at = ?,
                           worker_id = NULL, retry_after = ?, timeout_at = NULL,
                           lease_expires_at = NULL
                       WHERE id = ? AND execution_id = ? AND status = 'running'""",
                    (error, now, retry_after, claim.id, claim.execution_id),
                ).rowcount == 1
            else:
                current = conn.execute(
                    """UPDATE jobs SET status = 'failed', error = ?, updated_at = ?,
                           completed_at = ?, worker_id = NULL, timeout_at = NULL,
                           lease_expires_at = NULL
                       WHERE id = ? AND execution_id = ? AND status = 'running'""",
                    (error, now, now, claim.id, claim.execution_id),
                ).rowcount == 1
                if current:
                    self._propagate_failure(conn, claim.id, now)
            self._close_execution(conn, claim, current, "failed", now, None, error)
        if current and retry:
            self._wake.bump()
        return current

    @staticmethod
    def _close_execution(
        conn: sqlite3.Connection, claim: ClaimedJob, current: bool, status: str, now: str,
        result: str | bytes | None, error: str | None,
    ) -> None:
        if current:
            conn.execute(
                "UPDATE job_executions SET status = ?, completed_at = ?, result = ?, error = ? "
                "WHERE id = ?",
                (status, now, result, error, claim.execution_id),
            )
        else:
            logger.warning("job %s: attempt %s ended after the job was reclaimed; "
                           "its outcome is discarded", claim.id, claim.execution_id)
            conn.execute(
                "UPDATE job_executions SET completed_at = COALESCE(completed_at, ?), "
                "error = COALESCE(error || '; ', '') || ? WHERE id = ?",
                (now, f"stale: attempt ended as {status} after the job was reclaimed; "
                      "outcome discarded", claim.execution_id),
            )

    def expire_overdue(self) -> int:
        """Running jobs past their timeout, or whose worker stopped renewing its lease, are
        requeued while attempts remain, else end timeout (or failed, for a lost worker)."""
        clock = time.time()
        overdue_sql = ("SELECT id, attempts, max_attempts, retry_delay, timeout, worker_id, "
                       "timeout_at < :clock FROM jobs WHERE status = 'running' "
                       "AND (timeout_at < :clock OR lease_expires_at < :clock)")
        if not self.db.read(overdue_sql, {"clock": clock}):
            return 0
        now_dt = datetime.now()
        now = now_dt.isoformat(timespec="microseconds")
        with self.db.transaction() as conn:
            overdue = conn.execute(overdue_sql, {"clock": clock}).fetchall()
            for job_id, attempts, max_attempts, retry_delay, timeout, worker, timed_out in overdue:
                if timed_out:
                    error, execution_status, final = (
                        f"Job timed out after {timeout} seconds", "timeout", "timeout")
                else:
                    error, execution_status, final = (
                        f"worker {worker} stopped renewing its lease (presumed dead)",
                        "lost", "failed")
                logger.warning("job %s: %s", job_id, error)
                if attempts < max_attempts:
                    retry_after = (
                        (now_dt + timedelta(seconds=retry_delay)).isoformat(timespec="microseconds")
                        if retry_delay else None
                    )
                    conn.execute(
                        "UPDATE jobs SET status = 'pending', error = ?, updated_at = ?, "
                        "worker_id = NULL, retry_after = ?, timeout_at = NULL, "
                        "lease_expires_at = NULL, execution_id = NULL WHERE id = ?",
                        (error, now, retry_after, job_id),
                    )
                else:
                    conn.execute(
                        "UPDATE jobs SET status = ?, error = ?, updated_at = ?, "
                        "completed_at = ?, worker_id = NULL, timeout_at = NULL, "
                        "lease_expires_at = NULL, execution_id = NULL WHERE id = ?",
                        (final, error, now, now, job_id),
                    )
                    self._propagate_failure(conn, job_id, now)
                conn.execute(
                    "UPDATE job_executions SET status = ?, completed_at = ?, error = ? "
                    "WHERE job_id = ? AND status = 'running'",
                    (execution_status, now, error, job_id),
                )
        self._wake.bump()
        return len(overdue)

    def release(self, claims: Sequence[ClaimedJob]) -> int:
        """Return jobs a stopping worker could not finish to the queue; the interrupted
        attempt does not count. Returns how many were still this worker's."""
        now = now_iso()
        released = 0
        with self.db.transaction() as conn:
            for claim in claims:
                if conn.execute(
                    "UPDATE jobs SET status = 'pending', attempts = MAX(attempts - 1, 0), "
                    "worker_id = NULL, execution_id = NULL, timeout_at = NULL, "
                    "lease_expires_at = NULL, updated_at = ? "
                    "WHERE id = ? AND execution_id = ? AND status = 'running'",
                    (now, claim.id, claim.execution_id),
                ).rowcount:
                    released += 1
                    conn.execute(
                        "UPDATE job_executions SET status = 'interrupted', completed_at = ?, "
                        "error = 'worker shut down before the job finished; returned to the "
                        "queue' WHERE id = ?",
                        (now, claim.execution_id),
                    )
        self._wake.bump()
        return released

    # -- workers --------------------------------------------------------------------------
    def register_worker(self, worker_id: str, concurrency: int, lease_timeout: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO workers (id, host, pid, concurrency, lease_timeout, "
                "started_at, last_heartbeat, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (worker_id, socket.gethostname(), os.getpid(), concurrency, lease_timeout,
                 now_iso(), time.time()),
            )

    def heartbeat(self, worker_id: str, execution_ids: Sequence[str], lease_timeout: float) -> int:
        """Renew the leases of this worker's running attempts; returns how many it still holds."""
        clock = time.time()
        with self.db.transaction() as conn:
            conn.execute("UPDATE workers SET last_heartbeat = ? WHERE id = ?", (clock, worker_id))
            renewed = 0
            for chunk in _chunks(list(execution_ids)):
                marks = ",".join("?" * len(chunk))
                renewed += conn.execute(
                    f"UPDATE jobs SET lease_expires_at = ? WHERE status = 'running' "
                    f"AND execution_id IN ({marks})",
                    (clock + lease_timeout, *chunk),
                ).rowcount
        self.db.checkpoint_if_large()
        return renewed

    def unregister_worker(self, worker_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE workers SET stopped_at = ? WHERE id = ?", (now_iso(), worker_id))

    def list_workers(self) -> list[Row]:
        rows = self.db.read(
            """SELECT w.*, (SELECT COUNT(*) FROM jobs j WHERE j.status = 'running'
                   AND (j.worker_id = w.id OR j.worker_id LIKE w.id || '-%')) AS running_jobs
               FROM workers w ORDER BY w.started_at DESC""")
        return [dict(row) for row in rows]

    # -- failure propagation --------------------------------------------------------------
    @staticmethod
    def _propagate_failure(conn: sqlite3.Connection, job_id: str, now: str) -> None:
        """Every pending descendant of ``job_id`` becomes upstream_failed."""
        row = conn.execute("SELECT name, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        error = f"upstream job {row[0]!r} ({job_id}) ended {row[1]}"
        conn.execute(
            _DESCENDANTS + """UPDATE jobs SET status = 'upstream_failed', error = :error,
                   updated_at = :now, completed_at = :now
               WHERE id IN down AND status = 'pending'""",
            {"root": job_id, "error": error, "now": now},
        )

    def cancel(self, job_id: str) -> bool:
        now = now_iso()
        with self.db.transaction() as conn:
            cancelled = conn.execute(
                "UPDATE jobs SET status = 'cancelled', updated_at = ?, completed_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (now, now, job_id),
            ).rowcount == 1
            if cancelled:
                self._propagate_failure(conn, job_id, now)
        return cancelled

    def requeue(self, job_id: str) -> bool:
        now = now_iso()
        marks = ",".join("?" * len(_FINAL))
        with self.db.transaction() as conn:
            requeued = conn.execute(
                f"""UPDATE jobs SET status = 'pending', attempts = 0, error = NULL,
                        retry_after = NULL, completed_at = NULL, updated_at = ?,
                        execution_id = NULL, lease_expires_at = NULL
                    WHERE id = ? AND status IN ({marks})""",
                (now, job_id, *_FINAL),
            ).rowcount == 1
            if requeued:
                self._restore_descendants(conn, job_id, now)
        if requeued:
            self._wake.bump()
        return requeued

    def _restore_descendants(self, conn: sqlite3.Connection, job_id: str, now: str) -> None:
        """Undo a propagation, then redo it from any other failed parent."""
        restored = [
            row[0] for row in conn.execute(
                _DESCENDANTS + "SELECT id FROM jobs WHERE id IN down AND status = 'upstream_failed'",
                {"root": job_id},
            )
        ]
        for chunk in _chunks(restored):
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE jobs SET status = 'pending', error = NULL, completed_at = NULL, "
                f"updated_at = ? WHERE id IN ({marks})",
                (now, *chunk),
            )
        still_failed: set[str] = set()
        for chunk in _chunks(restored):
            marks = ",".join("?" * len(chunk))
            still_failed.update(
                row[0] for row in conn.execute(
                    f"""SELECT DISTINCT p.id FROM job_dependencies d
                        JOIN jobs p ON p.id = d.depends_on
                        WHERE d.job_id IN ({marks}) AND p.status IN (?, ?, ?)""",
                    (*chunk, *_FINAL),
                )
            )
        for parent in sorted(still_failed):
            self._propagate_failure(conn, parent, now)

    def clear_completed(self, before_timestamp: str | None = None) -> int:
        condition = "status IN ('completed', 'cancelled')"
        args: tuple[Any, ...] = ()
        if before_timestamp:
            condition += " AND completed_at < ?"
            args = (before_timestamp,)
        with self.db.transaction() as conn:
            conn.execute(
                f"DELETE FROM job_executions WHERE job_id IN (SELECT id FROM jobs WHERE {condition})",
                args,
            )
            conn.execute(
                f"DELETE FROM job_dependencies WHERE job_id IN "
                f"(SELECT id FROM jobs WHERE {condition})",
                args,
            )
            return conn.execute(f"DELETE FROM jobs WHERE {condition}", args).rowcount

    # -- reads ----------------------------------------------------------------------------
    def get_job(self, job_id: str) -> Row | None:
        rows = self.db.read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return dict(rows[0]) if rows else None

    def get_executions(self, job_id: str) -> list[Row]:
        rows = self.db.read(
            "SELECT id, job_id, worker_id, status, started_at, completed_at, result, error "
            "FROM job_executions WHERE job_id = ? ORDER BY started_at, rowid",
            (job_id,),
        )
        return [dict(row) for row in rows]

    def list_jobs(self, status: str | None, limit: int) -> list[Row]:
        if status:
            rows = self.db.read(
                "SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC LIMIT ?",
                (status, limit),
            )
        else:
            rows = self.db.read("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [dict(row) for row in rows]

    def count_by_status(self) -> dict[str, int]:
        return dict(self.db.read("SELECT status, COUNT(*) FROM jobs GROUP BY status"))

    def existing_ids(self, job_ids: Iterable[str]) -> set[str]:
        ids = list(job_ids)
        found: set[str] = set()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self.db.read(
                f"SELECT id FROM jobs WHERE id IN ({marks})", chunk))
        return found

    def parent_results(self, job_id: str) -> list[ParentResult]:
        rows = self.db.read(
            """SELECT d.depends_on, p.name, p.result, p.serializer FROM job_dependencies d
               LEFT JOIN jobs p ON p.id = d.depends_on
               WHERE d.job_id = ? ORDER BY d.position""",
            (job_id,),
        )
        return [ParentResult(*row) for row in rows]

    def list_workflows(self) -> list[Row]:
        rows = self.db.read(
            """SELECT w.id, w.name, w.created_at, j.status, COUNT(j.id) AS count
               FROM workflows w LEFT JOIN jobs j ON j.workflow_id = w.id
               GROUP BY w.id, j.status ORDER BY w.created_at DESC, w.id""")
        workflows: dict[str, Row] = {}
        for row in rows:
            entry = workflows.setdefault(
                row["id"], {"id": row["id"], "name": row["name"],
                            "created_at": row["created_at"], "counts": {}})
            if row["status"] is not None:
                entry["counts"][row["status"]] = row["count"]
        return list(workflows.values())

    def get_workflow(self, workflow_id: str) -> Row | None:
        rows = self.db.read(
            "SELECT id, name, created_at FROM workflows WHERE id = ?", (workflow_id,))
        return dict(rows[0]) if rows else None

    def workflow_jobs(self, workflow_id: str) -> list[Row]:
        rows = self.db.read(
            """SELECT id, name, function_module, function_name, status, attempts,
                   max_attempts, started_at, completed_at, worker_id, error
               FROM jobs WHERE workflow_id = ? ORDER BY created_at, rowid""",
            (workflow_id,),
        )
        return [dict(row) for row in rows]

    def workflow_counts(self, workflow_id: str) -> dict[str, int]:
        return dict(self.db.read(
            "SELECT status, COUNT(*) FROM jobs WHERE workflow_id = ? GROUP BY status",
            (workflow_id,)))

    def workflow_results(self, workflow_id: str) -> list[Row]:
        rows = self.db.read(
            "SELECT id, name, result, serializer FROM jobs "
            "WHERE workflow_id = ? AND status = 'completed' ORDER BY created_at, rowid",
            (workflow_id,),
        )
        return [dict(row) for row in rows]

    def workflow_edges(self, workflow_id: str) -> list[tuple[str, str]]:
        rows = self.db.read(
            """SELECT d.depends_on, d.job_id FROM job_dependencies d
               JOIN jobs j ON j.id = d.job_id WHERE j.workflow_id = ?
               ORDER BY j.created_at, j.rowid, d.position""",
            (workflow_id,),
        )
        return [(row[0], row[1]) for row in rows]

    # -- wake-ups -------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """Seconds until a delayed retry becomes ready or a running job times out."""
        now = now_iso()
        rows = self.db.read(
            """SELECT (SELECT MIN(retry_after) FROM jobs WHERE status = 'pending'
                         AND pending_deps = 0 AND retry_after > ?),
                      (SELECT MIN(MIN(timeout_at, COALESCE(lease_expires_at, timeout_at)))
                         FROM jobs WHERE status = 'running')""",
            (now,),
        )
        retry_after, timeout_at = rows[0]
        waits = []
        if retry_after:
            waits.append((datetime.fromisoformat(retry_after) - datetime.now()).total_seconds())
        if timeout_at:
            waits.append(timeout_at - time.time())
        return max(0.0, min(waits)) if waits else None

    def wait_for_work(self, timeout: float) -> None:
        """Wake on a same-process bump at once, on another process's commit within
        CHANGE_POLL_SECONDS (``PRAGMA data_version``), else after ``timeout``."""
        deadline = time.monotonic() + timeout
        generation = self._wake.generation
        conn = self.db.connection()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._wake.wait(generation, min(remaining, CHANGE_POLL_SECONDS)):
                return
            if conn.execute("PRAGMA data_version").fetchone()[0] != version:
                return

    def wake_all(self) -> None:
        self._wake.bump()

    def close(self) -> None:
        self.db.close()
