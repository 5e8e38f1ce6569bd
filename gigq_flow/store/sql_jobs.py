"""Changes to the job graph in the SQL store: submit, cancel, requeue, clear."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from json.encoder import encode_basestring_ascii
from operator import attrgetter, itemgetter
from typing import Any

from ..clock import now_iso
from ..errors import DuplicateJobError, UnknownDependencyError
from ..job import new_id
from ..job_status import JobStatus
from .contract import ClaimedJob, NewJob, WorkflowRecord, map_tag
from .sql_limits import SQLLimits
from .statements import DESCENDANTS, FINAL, FINAL_MARKS, HELD, chunks, marks
from .transport import Tx

CANCEL_SET = """error = CASE WHEN status = 'running' THEN 'cancelled while it ran'
        ELSE error END,
    status = 'cancelled', updated_at = ?, completed_at = ?"""
"""A pending or running job cancelled (a running one keeps its attempt in its row, ended)."""


MAP_OPTIONS = ("function_name", "function_module", "priority", "max_attempts", "timeout",
               "description", "pass_parent_results", "retry_delay", "workflow_id",
               "serializer", "cache", "cache_version", "code_digest")
MAP_ITEM = f"""INSERT INTO jobs (id, name, params, {", ".join(MAP_OPTIONS)}, dependencies,
        status, created_at, updated_at, attempts, pending_deps, tags, gate, map_of, map_index)
    VALUES (?, ?, ?, {marks(MAP_OPTIONS)}, '[]', 'pending', ?, ?, 0, 0, ?, ?, ?, ?)"""
"""One item of a map: the map's function and options, its own params and name."""


JOB_COLUMNS = ("id", "name", "function_name", "function_module", "params", "priority",
               "dependencies", "max_attempts", "timeout", "description", "created_at",
               "updated_at", "pass_parent_results", "retry_delay", "workflow_id",
               "pending_deps", "serializer", "cache", "cache_version", "code_digest",
               "map_param", "map_limit", "tags", "gate")
"""The columns a submission writes for each job, in the order of its rows."""
OPTIONAL_JOB_FIELDS = ("pass_parent_results", "cache", "cache_version", "code_digest",
                       "map_param", "map_limit")
"""Fields of a NewJob that are None unless the job uses what they record."""


def job_insert(empty: Collection[str]) -> tuple[str, Callable[[tuple[Any, ...]], Any]]:
    """The INSERT of a submission's job rows and the picker of its values from a full
    row, ``empty`` columns (no job of the submission has a value) left to their default,
    NULL: the sqlite3 module binds None only after failing to adapt it, which costs more
    than binding the rest of the row."""
    kept = [i for i, column in enumerate(JOB_COLUMNS) if column not in empty]
    columns = ", ".join(JOB_COLUMNS[i] for i in kept)
    return (f"INSERT INTO jobs (status, attempts, {columns}) "
            f"VALUES ('pending', 0, {marks(kept)})", itemgetter(*kept))


def json_ids(ids: Sequence[str]) -> str:
    """``json.dumps(list(ids))`` for strings, without the encoder ``json.dumps`` builds
    at every call (a submission encodes one list of dependencies per job)."""
    return f"[{', '.join(map(encode_basestring_ascii, ids))}]"


def outside_parents(jobs: Sequence[NewJob]) -> set[str]:
    """The parents of ``jobs`` that are not among them: jobs already in the queue."""
    inside = {job.id for job in jobs}
    return {dep for job in jobs for dep in job.dependencies if dep not in inside}


class SQLJobs(SQLLimits):
    """Jobs and their edges: inserted atomically, cancelled, requeued, cleared."""

    # -- submit -------------------------------------------------------------------------------
    def submit(self, jobs: Sequence[NewJob], workflow: WorkflowRecord | None = None) -> None:
        new_ids = [job.id for job in jobs]
        outside = sorted(outside_parents(jobs))

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
        workflow_id = workflow.id if workflow else None

        def waiting(dependencies: tuple[str, ...]) -> int:
            """How many parents have yet to complete (all of them, inside the submission)."""
            if not parent_status:
                return len(dependencies)
            return sum(parent_status.get(dep) != completed for dep in dependencies)

        gates = self.gate_new_jobs(tx, [job.tags for job in jobs])
        # Rows and edges are generated as the driver inserts them, never held as lists:
        # a 100,000-step workflow's would take tens of MB at once.
        rows = (
            (
                job.id, job.name, job.function_name, job.function_module,
                self.blob(job.params), job.priority, json_ids(job.dependencies),
                job.max_attempts, job.timeout, job.description, job.created_at, now,
                None if job.pass_parent_results is None else int(job.pass_parent_results),
                job.retry_delay, workflow_id, waiting(job.dependencies), job.serializer,
                job.cache, job.cache_version, job.code_digest, job.map_param, job.map_limit,
                json.dumps(job.tags) if job.tags else None, gate,
            )
            for job, gate in zip(jobs, gates, strict=True)
        )
        values: dict[str, Iterable[Any]] = {
            name: map(attrgetter(name), jobs) for name in OPTIONAL_JOB_FIELDS}
        values.update(tags=(job.tags or None for job in jobs), gate=gates,
                      workflow_id=(workflow_id,))
        statement, pick = job_insert(
            {column for column, found in values.items() if set(found) <= {None}})
        tx.executemany(statement, map(pick, rows))
        code = {job.code_digest: job.code for job in jobs if job.code is not None}
        if code:
            tx.executemany(
                "INSERT INTO step_code (digest, data, size, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING",
                [(digest, self.blob(data), len(data), now) for digest, data in code.items()],
            )
        if any(job.dependencies for job in jobs):
            tx.executemany(
                "INSERT INTO job_dependencies (job_id, depends_on, position) VALUES (?, ?, ?)",
                ((job.id, dep, i) for job in jobs for i, dep in enumerate(job.dependencies)),
            )

    def expand_map(self, claim: ClaimedJob, item_params: Sequence[str | bytes]) -> bool:
        def body(tx: Tx) -> bool:
            now = now_iso()
            # The expansion is not an attempt: the map's row waits for its items as it
            # waited for its parent, and its collection is its first attempt.
            if tx.execute(
                f"""UPDATE jobs SET status = 'pending', pending_deps = ?, map_size = ?,
                        attempts = attempts - 1, worker_id = NULL, started_at = NULL,
                        execution_id = NULL, updated_at = ? WHERE {HELD}""",
                (len(item_params), len(item_params), now, claim.id, claim.execution_id),
            ).rowcount != 1:
                return False
            name, tags, limit, *options = tx.execute(
                f"SELECT name, tags, map_limit, {', '.join(MAP_OPTIONS)} FROM jobs WHERE id = ?",
                (claim.id,)).fetchone()
            item_tags = json.loads(tags) if tags else []
            own = [map_tag(claim.id)] if limit is not None else []  # max_active's tag
            (gate,) = self.gate_new_jobs(tx, [item_tags + own], also_limited=own)
            item_tags += own
            encoded_tags = json.dumps(item_tags) if item_tags else None
            items = [(new_id(), i) for i in range(len(item_params))]
            for chunk in chunks(list(zip(items, item_params, strict=True))):
                tx.executemany(MAP_ITEM, [
                    (item_id, f"{name}[{i}]", self.blob(params), *options, now, now,
                     encoded_tags, gate, claim.id, i)
                    for (item_id, i), params in chunk])
                tx.executemany(
                    "INSERT INTO job_dependencies (job_id, depends_on, position) VALUES (?, ?, ?)",
                    [(claim.id, item_id, i + 1) for (item_id, i), _ in chunk])
            self.announce(tx)
            return True

        return self._run_and_wake(body)

    def cancel(self, job_id: str, *, running: bool = False) -> bool:
        statuses = "'pending', 'running'" if running else "'pending'"

        def body(tx: Tx) -> bool:
            now = now_iso()
            # A running job keeps its attempt in its row, ended; the worker's outcome is
            # fenced off, and its heartbeat tells the step (check_cancelled).
            cancelled = tx.execute(
                f"UPDATE jobs SET {CANCEL_SET} WHERE id = ? AND status IN ({statuses})",
                (now, now, job_id),
            ).rowcount == 1
            if cancelled:
                self._propagate_failure(tx, job_id, now)
            return cancelled

        return self._run_and_wake(body)

    def cancel_workflow(self, workflow_id: str) -> int:
        def body(tx: Tx) -> int:
            now = now_iso()
            cancelled = [row[0] for row in tx.execute(
                f"SELECT id FROM jobs WHERE workflow_id = ? AND status IN ('pending', 'running') "
                f"ORDER BY id {self.lock_update}", (workflow_id,))]
            for chunk in chunks(cancelled):
                tx.execute(
                    f"UPDATE jobs SET {CANCEL_SET} WHERE id IN ({marks(chunk)}) "
                    "AND status IN ('pending', 'running')",
                    (now, now, *chunk))
            outside = sorted({row[0] for chunk in chunks(cancelled) for row in tx.execute(
                f"""SELECT DISTINCT d.depends_on FROM job_dependencies d
                    JOIN jobs c ON c.id = d.job_id
                    WHERE d.depends_on IN ({marks(chunk)}) AND c.status = 'pending'""", chunk)})
            for parent in outside:  # jobs of other runs that wait for this one
                self._propagate_failure(tx, parent, now)
            return len(cancelled)

        return self._run_and_wake(body)

    def requeue(self, job_id: str) -> bool:

        def body(tx: Tx) -> bool:
            now = now_iso()
            tx.execute(  # the failed attempt the row holds becomes history
                f"""INSERT INTO ended_attempts (id, job_id, worker_id, status, started_at,
                        completed_at, result, error, traceback)
                    SELECT execution_id, id, worker_id, status, started_at, completed_at,
                        NULL, error, traceback FROM jobs
                    WHERE id = ? AND execution_id IS NOT NULL AND status IN ({FINAL_MARKS})""",
                (job_id, *FINAL),
            )
            requeued = tx.execute(
                f"""UPDATE jobs SET status = 'pending', attempts = 0, error = NULL,
                        traceback = NULL, retry_after = NULL, completed_at = NULL, updated_at = ?,
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
            digests = [row[0] for row in tx.execute(
                f"SELECT DISTINCT result_digest FROM jobs WHERE {condition} "
                "AND result_digest IS NOT NULL", args)]
            code = [row[0] for row in tx.execute(
                f"SELECT DISTINCT code_digest FROM jobs WHERE {condition} "
                "AND code_digest IS NOT NULL", args)]
            tx.execute(
                f"DELETE FROM attempt_output WHERE job_id IN "
                f"(SELECT id FROM jobs WHERE {condition})",
                args,
            )
            tx.execute(
                f"DELETE FROM ended_attempts WHERE job_id IN "
                f"(SELECT id FROM jobs WHERE {condition})",
                args,
            )
            tx.execute(
                f"DELETE FROM job_dependencies WHERE job_id IN "
                f"(SELECT id FROM jobs WHERE {condition})",
                args,
            )
            cleared = tx.execute(f"DELETE FROM jobs WHERE {condition}", args).rowcount
            self._drop_unreferenced_blobs(tx, digests)
            for chunk in chunks(code):  # code is kept while a job references it
                tx.execute(
                    f"DELETE FROM step_code WHERE digest IN ({marks(chunk)}) AND NOT EXISTS "
                    "(SELECT 1 FROM jobs WHERE jobs.code_digest = step_code.digest)", chunk)
            return cleared

        return self.db.run(body)
