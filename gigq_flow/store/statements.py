"""SQL fragments both backends run, and the row a claim returns, mapped by name where its
columns are listed. Statements use ``?`` placeholders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from ..job import DEFAULT_TIMEOUT
from ..job_status import FINAL_FAILURES
from .contract import ClaimedJob

T = TypeVar("T")

SQL_CHUNK = 500
"""Ids bound to one ``IN (...)`` list at most."""
FINAL = tuple(status.value for status in FINAL_FAILURES)
FINAL_MARKS = ", ".join("?" * len(FINAL))
DESCENDANTS = """
    WITH RECURSIVE down(id) AS (
        SELECT job_id FROM job_dependencies WHERE depends_on = ?
        UNION SELECT d.job_id FROM job_dependencies d JOIN down ON d.depends_on = down.id)
"""
READY_FIRST = """status = 'pending' AND pending_deps = 0 AND gate IS NULL
    AND (retry_after IS NULL OR retry_after <= ?) ORDER BY priority DESC, created_at"""
"""The ready jobs without a limit in the order of their index (``idx_jobs_ready_free``)."""
READY = READY_FIRST + " LIMIT 1"
"""The head of that index: the job a claim takes, unless a gated job with room comes
first (:mod:`.sql_limits`)."""
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
    timeout, cache, cache_version, code_digest, map_param, map_size,
    EXISTS (SELECT 1 FROM job_dependencies WHERE depends_on = jobs.id)"""
"""What a worker needs of a claimed job, ``{attempts}`` being the count after the claim;
a backend selects the job's row key after them. Comparisons rather than ``NOT IN
(...)``, for which SQLite builds a temporary index on every claim."""
CLAIM_RETURNING = "RETURNING " + CLAIMED_COLUMNS.format(attempts="attempts")
READY_CACHED_CHILDREN = f"""SELECT {CLAIMED_COLUMNS.format(attempts="attempts + 1")}, id
    FROM jobs WHERE id IN (SELECT job_id FROM job_dependencies WHERE depends_on = ?)
    AND status = 'pending' AND pending_deps = 0 AND cache = 'use' AND map_param IS NULL
    AND (retry_after IS NULL OR retry_after <= ?)"""
"""The children of a job, ready and of cached runs: what its reuse may reuse next, as a
claim would read them (with their id as row key)."""


def claimed_job(row: Sequence[Any], execution_id: str, worker_id: str) -> ClaimedJob:
    """The ClaimedJob of a row of CLAIMED_COLUMNS followed by the row key."""
    (job_id, name, function_module, function_name, params, attempts, max_attempts,
     retry_delay, pass_parent_results, has_dependencies, serializer, timeout, cache,
     cache_version, code_digest, map_param, map_size, has_children, row_key) = row
    # Positional, in ClaimedJob's field order: keywords cost 0.8 µs more (about 2.5% of a job)
    # on every claim.
    return ClaimedJob(
        job_id, name, function_module, function_name, params, attempts, max_attempts,
        retry_delay or 0, None if pass_parent_results is None else bool(pass_parent_results),
        bool(has_dependencies), serializer or "json", timeout or DEFAULT_TIMEOUT, cache,
        cache_version, code_digest, map_param, map_size, bool(has_children), row_key,
        execution_id, worker_id,
    )


def job_result(alias: str) -> str:
    """The result of the job row ``alias``: its own column, or the stored blob a job of a
    cached run references."""
    return (f"COALESCE({alias}.result, (SELECT b.data FROM result_blobs b "
            f"WHERE b.digest = {alias}.result_digest))")


def parents_query(*, results: bool) -> str:
    """A job's parents in dependency order (id, name, result, serializer, digest); with
    ``results=False`` a result is read only for a parent without a digest."""
    skip = "" if results else "WHEN p.result_digest IS NOT NULL THEN NULL"
    return f"""SELECT d.depends_on AS id, p.name,
            CASE {skip} WHEN p.id IS NULL THEN NULL ELSE {job_result("p")} END AS result,
            p.serializer, p.result_digest AS digest
        FROM job_dependencies d LEFT JOIN jobs p ON p.id = d.depends_on
        WHERE d.job_id = ? ORDER BY d.position"""


PARENT_RESULTS = parents_query(results=True)
PARENT_DIGESTS = parents_query(results=False)


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most SQL_CHUNK."""
    for start in range(0, len(items), SQL_CHUNK):
        yield items[start : start + SQL_CHUNK]


def marks(items: Sequence[Any]) -> str:
    """``?,?,...``: one placeholder per item."""
    return ",".join("?" * len(items))
