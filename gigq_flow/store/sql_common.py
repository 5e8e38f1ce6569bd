"""What the SQL backends share: the transport contract, statement fragments, helpers.

Statements use ``?`` placeholders; a transport may rewrite them for its driver.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, TypeVar

from ..job import FINAL_FAILURES
from .base import Row

SQL_CHUNK = 500
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
    attempts = attempts + 1, execution_id = ?, timeout_at = ? + COALESCE(timeout, 300),
    lease_expires_at = ?"""
CLAIM_RETURNING = """RETURNING id, name, function_module, function_name, params, attempts,
    max_attempts, retry_delay, pass_parent_results,
    dependencies NOT IN ('[]', '', 'null'), serializer"""

#: The indexes both backends create: the claim reads the head of ``idx_jobs_ready``, so
#: its cost does not depend on how many jobs wait; completions find children through
#: ``idx_job_dependencies_parent``; overdue checks read ``idx_jobs_running``.
JOB_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_job_dependencies_parent ON job_dependencies (depends_on)",
    """CREATE INDEX IF NOT EXISTS idx_jobs_ready ON jobs (priority DESC, created_at)
        WHERE status = 'pending' AND pending_deps = 0""",
    "CREATE INDEX IF NOT EXISTS idx_jobs_running ON jobs (worker_id) WHERE status = 'running'",
    "CREATE INDEX IF NOT EXISTS idx_jobs_created ON jobs (created_at)",
    "CREATE INDEX IF NOT EXISTS idx_jobs_workflow ON jobs (workflow_id)",
)

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
    def run(self, body: Callable[[Tx], T]) -> T:
        """Run ``body`` in one write transaction (retried by the transport on lock
        conflicts, so it must not have effects outside the database)."""

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read statement, as dicts."""

    def close(self) -> None: ...


def now_iso() -> str:
    return datetime.now().isoformat(timespec="microseconds")


def later_iso(seconds: float) -> str | None:
    if not seconds:
        return None
    return (datetime.now() + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), SQL_CHUNK):
        yield items[start : start + SQL_CHUNK]


def marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))
