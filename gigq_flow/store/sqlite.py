"""The embedded backend: one SQLite file, shared by threads and processes.

Connection policy: one connection per thread and file, opened on first use and kept
until :func:`close_thread_connections`. Connections run in autocommit mode; every
write is one ``BEGIN IMMEDIATE`` transaction, so lock waits happen at its start and
are retried here with short sleeps (no "database is locked" reaches the caller).
WAL journal, ``synchronous=NORMAL`` by default: a power cut may roll back the last
commits, never corrupt the file; ``synchronous="FULL"`` makes every commit durable.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ..errors import DatabaseError, DuplicateJobError, UnknownDependencyError
from ..job import FINAL_FAILURES, JobStatus
from .base import ClaimedJob, NewJob, ParentResult, Row, WorkflowRecord
from .sqlite_schema import SCHEMA_VERSION, check_version, migrate
from .wakeup import signal_for

logger = logging.getLogger(__name__)

LOCK_RETRY_SECONDS = 60.0
CHANGE_POLL_SECONDS = 0.02
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_SQL_CHUNK = 500

T = TypeVar("T")
_local = threading.local()

_FINAL = tuple(s.value for s in FINAL_FAILURES)
_DESCENDANTS = """
    WITH RECURSIVE down(id) AS (
        SELECT job_id FROM job_dependencies WHERE depends_on = :root
        UNION SELECT d.job_id FROM job_dependencies d JOIN down ON d.depends_on = down.id)
"""


def now_iso() -> str:
    return datetime.now().isoformat(timespec="microseconds")


def _is_locked(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _SQL_CHUNK):
        yield items[start : start + _SQL_CHUNK]


def close_thread_connections(path: str | None = None) -> None:
    """Close this thread's connections (to one file, or to all)."""
    connections: dict[str, sqlite3.Connection] = getattr(_local, "connections", {})
    for key in [path] if path else list(connections):
        conn = connections.pop(key, None)
        if conn is not None:
            conn.close()


class SQLiteStore:
    """A job store in one SQLite file (see the module docstring for the policy)."""

    def __init__(
        self, path: str | os.PathLike[str], *, initialize: bool = True, synchronous: str = "NORMAL"
    ) -> None:
        raw = os.fspath(path)
        if raw in ("", ":memory:"):
            raise DatabaseError(
                "an in-memory database cannot be shared by workers; pass a file path"
            )
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise DatabaseError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.location = self.path = os.path.abspath(raw)
        self.synchronous = synchronous.upper()
        self._wake = signal_for(self.path)
        self._check_path()
        self._create_private_file()
        conn = self._connection()
        try:
            if initialize:
                self._retry_locked(lambda: migrate(conn, self.path))
            elif check_version(conn, self.path) != SCHEMA_VERSION:
                raise DatabaseError(
                    f"{self.path} has no current gigq_flow schema; "
                    "open it with initialize=True to create or migrate it"
                )
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc

    # -- connections and transactions --------------------------------------------------
    def _check_path(self) -> None:
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise DatabaseError(
                f"cannot open {self.path}: directory {parent} does not exist; create it first"
            )
        if os.path.isdir(self.path):
            raise DatabaseError(f"{self.path} is a directory; pass a file path for the queue")

    def _create_private_file(self) -> None:
        """New files are readable by their owner only: the queue is the power to run code."""
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise DatabaseError(f"cannot create {self.path}: {exc.strerror}") from exc

    def _connection(self) -> sqlite3.Connection:
        connections = getattr(_local, "connections", None)
        if connections is None:
            connections = _local.connections = {}
        conn = connections.get(self.path)
        if conn is None:
            conn = connections[self.path] = self._connect()
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            mode = self._retry_locked(
                lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            )
            if mode != "wal":
                logger.warning("%s: WAL journal unavailable (got %s)", self.path, mode)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = OFF")
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc
        return conn

    def _wrap(self, exc: sqlite3.Error) -> DatabaseError:
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            return DatabaseError(
                f"{self.path} is not a SQLite database ({exc}); pass a queue file or a new path"
            )
        if "readonly" in str(exc):
            return DatabaseError(
                f"{self.path} is read-only ({exc}); give the user write access to the file "
                "and its directory"
            )
        return DatabaseError(f"{self.path}: {exc}")

    def _retry_locked(self, operation: Callable[[], T]) -> T:
        deadline = time.monotonic() + LOCK_RETRY_SECONDS
        delay = 0.0005
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise
                if time.monotonic() > deadline:
                    raise DatabaseError(
                        f"{self.path} stayed locked for {LOCK_RETRY_SECONDS:.0f}s; "
                        "is a process holding a long transaction on it?"
                    ) from exc
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.02)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            self._retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._wrap(exc) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _read(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        conn = self._connection()
        try:
            return self._retry_locked(lambda: conn.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc

    # -- submit ---------------------------------------------------------------------------
    def submit(self, jobs: Sequence[NewJob], workflow: WorkflowRecord | None = None) -> None:
        new_ids = {job.id for job in jobs}
        outside = list({dep for job in jobs for dep in job.dependencies} - new_ids)
        with self._transaction() as conn:
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
    def claim(self, worker_id: str) -> ClaimedJob | None:
        now = now_iso()
        execution_id = str(uuid.uuid4())
        with self._transaction() as conn:
            row = conn.execute(
                """UPDATE jobs SET status = 'running', worker_id = :worker, started_at = :now,
                       updated_at = :now, attempts = attempts + 1, execution_id = :execution,
                       timeout_at = :clock + COALESCE(timeout, 300)
                   WHERE id = (SELECT id FROM jobs
                               WHERE status = 'pending' AND pending_deps = 0
                                 AND (retry_after IS NULL OR retry_after <= :now)
                               ORDER BY priority DESC, created_at LIMIT 1)
                   RETURNING id, name, function_module, function_name, params, attempts,
                       max_attempts, retry_delay, pass_parent_results,
                       dependencies NOT IN ('[]', '', 'null'), serializer""",
                {"worker": worker_id, "now": now, "execution": execution_id, "clock": time.time()},
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
        with self._transaction() as conn:
            current = conn.execute(
                """UPDATE jobs SET status = 'completed', result = ?, error = NULL,
                       completed_at = ?, updated_at = ?, worker_id = NULL, timeout_at = NULL
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
        with self._transaction() as conn:
            if retry:
                retry_after = (
                    (now_dt + timedelta(seconds=claim.retry_delay)).isoformat(timespec="microseconds")
                    if claim.retry_delay > 0 else None
                )
                current = conn.execute(
                    """UPDATE jobs SET status = 'pending', error = ?, updated_at = ?,
                           worker_id = NULL, retry_after = ?, timeout_at = NULL
                       WHERE id = ? AND execution_id = ? AND status = 'running'""",
                    (error, now, retry_after, claim.id, claim.execution_id),
                ).rowcount == 1
            else:
                current = conn.execute(
                    """UPDATE jobs SET status = 'failed', error = ?, updated_at = ?,
                           completed_at = ?, worker_id = NULL, timeout_at = NULL
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

    def expire_timeouts(self) -> int:
        clock = time.time()
        if not self._read(
            "SELECT 1 FROM jobs WHERE status = 'running' AND timeout_at < ? LIMIT 1", (clock,)
        ):
            return 0
        now_dt = datetime.now()
        now = now_dt.isoformat(timespec="microseconds")
        with self._transaction() as conn:
            expired = conn.execute(
                "SELECT id, attempts, max_attempts, retry_delay, timeout FROM jobs "
                "WHERE status = 'running' AND timeout_at < ?",
                (clock,),
            ).fetchall()
            for job_id, attempts, max_attempts, retry_delay, timeout in expired:
                error = f"Job timed out after {timeout} seconds"
                logger.warning("job %s timed out after %s s", job_id, timeout)
                if attempts < max_attempts:
                    retry_after = (
                        (now_dt + timedelta(seconds=retry_delay)).isoformat(timespec="microseconds")
                        if retry_delay else None
                    )
                    conn.execute(
                        "UPDATE jobs SET status = 'pending', error = ?, updated_at = ?, "
                        "worker_id = NULL, retry_after = ?, timeout_at = NULL, "
                        "execution_id = NULL WHERE id = ?",
                        (error, now, retry_after, job_id),
                    )
                else:
                    conn.execute(
                        "UPDATE jobs SET status = 'timeout', error = ?, updated_at = ?, "
                        "completed_at = ?, worker_id = NULL, timeout_at = NULL, "
                        "execution_id = NULL WHERE id = ?",
                        (error, now, now, job_id),
                    )
                    self._propagate_failure(conn, job_id, now)
                conn.execute(
                    "UPDATE job_executions SET status = 'timeout', completed_at = ?, error = ? "
                    "WHERE job_id = ? AND status = 'running'",
                    (now, error, job_id),
                )
        self._wake.bump()
        return len(expired)

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
        with self._transaction() as conn:
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
        with self._transaction() as conn:
            requeued = conn.execute(
                f"""UPDATE jobs SET status = 'pending', attempts = 0, error = NULL,
                        retry_after = NULL, completed_at = NULL, updated_at = ?,
                        execution_id = NULL
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
        with self._transaction() as conn:
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
        rows = self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return dict(rows[0]) if rows else None

    def get_executions(self, job_id: str) -> list[Row]:
        rows = self._read(
            "SELECT id, job_id, worker_id, status, started_at, completed_at, result, error "
            "FROM job_executions WHERE job_id = ? ORDER BY started_at, rowid",
            (job_id,),
        )
        return [dict(row) for row in rows]

    def list_jobs(self, status: str | None, limit: int) -> list[Row]:
        if status:
            rows = self._read(
                "SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC LIMIT ?",
                (status, limit),
            )
        else:
            rows = self._read("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [dict(row) for row in rows]

    def count_by_status(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status"))

    def existing_ids(self, job_ids: Iterable[str]) -> set[str]:
        ids = list(job_ids)
        found: set[str] = set()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self._read(
                f"SELECT id FROM jobs WHERE id IN ({marks})", chunk))
        return found

    def parent_results(self, job_id: str) -> list[ParentResult]:
        rows = self._read(
            """SELECT d.depends_on, p.name, p.result, p.serializer FROM job_dependencies d
               LEFT JOIN jobs p ON p.id = d.depends_on
               WHERE d.job_id = ? ORDER BY d.position""",
            (job_id,),
        )
        return [ParentResult(*row) for row in rows]

    def list_workflows(self) -> list[Row]:
        rows = self._read(
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
        rows = self._read(
            "SELECT id, name, created_at FROM workflows WHERE id = ?", (workflow_id,))
        return dict(rows[0]) if rows else None

    def workflow_jobs(self, workflow_id: str) -> list[Row]:
        rows = self._read(
            """SELECT id, name, function_module, function_name, status, attempts,
                   max_attempts, started_at, completed_at, worker_id, error
               FROM jobs WHERE workflow_id = ? ORDER BY created_at, rowid""",
            (workflow_id,),
        )
        return [dict(row) for row in rows]

    def workflow_counts(self, workflow_id: str) -> dict[str, int]:
        return dict(self._read(
            "SELECT status, COUNT(*) FROM jobs WHERE workflow_id = ? GROUP BY status",
            (workflow_id,)))

    def workflow_results(self, workflow_id: str) -> list[Row]:
        rows = self._read(
            "SELECT id, name, result, serializer FROM jobs "
            "WHERE workflow_id = ? AND status = 'completed' ORDER BY created_at, rowid",
            (workflow_id,),
        )
        return [dict(row) for row in rows]

    def workflow_edges(self, workflow_id: str) -> list[tuple[str, str]]:
        rows = self._read(
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
        rows = self._read(
            """SELECT (SELECT MIN(retry_after) FROM jobs WHERE status = 'pending'
                         AND pending_deps = 0 AND retry_after > ?),
                      (SELECT MIN(timeout_at) FROM jobs WHERE status = 'running')""",
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
        conn = self._connection()
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
        close_thread_connections(self.path)
