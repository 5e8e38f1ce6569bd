"""What the SQL backends share: the transport contract, statement fragments, helpers.

Statements use ``?`` placeholders; a transport may rewrite them for its driver.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, TypeVar

from ..job import FINAL_FAILURES
from .base import Row, new_instance

SQL_CHUNK = 500
ADOPTED_WORKER = "worker before migration"
FINAL = tuple(status.value for status in FINAL_FAILURES)
FINAL_MARKS = ", ".join("?" * len(FINAL))
DESCENDANTS = """
    WITH RECURSIVE down(id) AS (
        SELECT job_id FROM job_dependencies WHERE depends_on = ?
        UNION SELECT d.job_id FROM job_dependencies d JOIN down ON d.depends_on = down.id)
"""
READY = """status = 'pending' AND pending_deps = 0
    AND (retry_after IS NULL OR retry_after <= ?) ORDER BY priority DESC, created_at LIMIT 1"""
CLAIM_SET = """status = 'running', worker_id = ?, started_at = ?, updated_at = ?,
    attempts = attempts + 1, execution_id = ?"""
COMPLETE_SET = """status = 'completed', result = ?, error = NULL, completed_at = ?,
    updated_at = ?"""
HELD = "id = ? AND execution_id = ? AND status = 'running'"
"""The fence of an attempt's writes: the job row still holds the attempt."""
RELEASE_CHILDREN = """UPDATE jobs SET pending_deps = pending_deps - 1
    WHERE id IN (SELECT job_id FROM job_dependencies WHERE depends_on = ?)"""
"""A completed parent counted off each of its children."""
CLAIMED_COLUMNS = """id, name, function_module, function_name, params, {attempts},
    max_attempts, retry_delay, pass_parent_results,
    dependencies <> '[]' AND dependencies <> '' AND dependencies <> 'null', serializer,
    timeout"""
"""What a worker needs of a claimed job, ``{attempts}`` being the count after the claim.
Comparisons rather than ``NOT IN (...)``, for which SQLite builds a temporary index on
every claim."""
CLAIM_RETURNING = "RETURNING " + CLAIMED_COLUMNS.format(attempts="attempts")

#: The indexes both backends create: the claim reads the head of ``idx_jobs_ready``, so
#: its cost does not depend on how many jobs wait; completions find children through
#: ``idx_job_dependencies_parent``; the search for lost workers reads
#: ``idx_workers_live``. Running jobs have no index: a claim and a completion then each
#: write one page less, and running jobs are found through their worker (see ``sql.py``).
JOB_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_job_dependencies_parent ON job_dependencies (depends_on)",
    """CREATE INDEX IF NOT EXISTS idx_jobs_ready ON jobs (priority DESC, created_at)
        WHERE status = 'pending' AND pending_deps = 0""",
    "CREATE INDEX IF NOT EXISTS idx_jobs_created ON jobs (created_at)",
    "CREATE INDEX IF NOT EXISTS idx_jobs_workflow ON jobs (workflow_id)",
    """CREATE INDEX IF NOT EXISTS idx_workers_live ON workers (last_heartbeat)
        WHERE stopped_at IS NULL AND reclaimed_at IS NULL""",
)

#: The ``job_attempts`` view: every attempt at every job, the ended ones that
#: ``job_executions`` keeps and the one a job row holds (its latest, while it runs and
#: once it completed or failed for good).
ATTEMPTS_QUERY = """
    SELECT id, job_id, worker_id, status, started_at, completed_at, result, error,
        0 AS is_current
    FROM job_executions
    UNION ALL
    SELECT execution_id, id, worker_id, status, started_at, completed_at, result, error, 1
    FROM jobs WHERE execution_id IS NOT NULL"""

T = TypeVar("T")


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Tx(Protocol):
    """What a transaction body sees: ``execute`` and ``executemany`` with ``?`` marks."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...


class Transport(Protocol):
    def run(self, body: Callable[[Tx], T], *, patient: bool = False) -> T:
        """Run ``body`` in one write transaction (retried by the transport on lock
        conflicts, so it must not have effects outside the database). ``patient``: the
        caller holds nothing yet (a claim) and may wait longer for a lock."""

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read statement, as dicts."""

    def close(self) -> None: ...


_formatted_second: tuple[int, str] = (0, "")


def now_iso() -> str:
    """Local time as ``datetime.now().isoformat(timespec="microseconds")`` writes it, in
    half its time: the date and time to the second are formatted once a second."""
    global _formatted_second
    clock = time.time()
    second = int(clock)
    formatted_at, formatted = _formatted_second
    if second != formatted_at:
        formatted = datetime.fromtimestamp(second).isoformat()
        _formatted_second = (second, formatted)
    return "%s.%06d" % (formatted, (clock - second) * 1e6)  # %d truncates, as isoformat


def later_iso(seconds: float) -> str | None:
    if not seconds:
        return None
    return (datetime.now() + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), SQL_CHUNK):
        yield items[start : start + SQL_CHUNK]


def marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


def adopt_running_jobs(tx: Tx) -> None:
    """Jobs an older worker left running get a stand-in worker whose lease ends when the
    last of their timeouts does: then any worker reclaims them as lost."""
    rows = tx.execute("SELECT id, started_at, timeout FROM jobs WHERE status = 'running'").fetchall()
    if not rows:
        return
    deadlines = []
    for _, started_at, timeout in rows:
        try:
            started = datetime.fromisoformat(started_at).timestamp()
        except (TypeError, ValueError):
            started = time.time()
        deadlines.append(started + (timeout or 300))
    instance = new_instance()
    tx.execute(
        "INSERT INTO workers (instance, id, host, pid, concurrency, lease_timeout, started_at, "
        "last_heartbeat) VALUES (?, ?, '', 0, 0, 0, ?, ?)",
        (instance, ADOPTED_WORKER, now_iso(), max(deadlines)),
    )
    for n, (job_id, _, _) in enumerate(rows):
        tx.execute("DELETE FROM job_executions WHERE job_id = ? AND status = 'running'", (job_id,))
        tx.execute("UPDATE jobs SET execution_id = ? WHERE id = ?", (f"{instance}-{n}", job_id))
