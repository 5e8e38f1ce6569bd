"""The read side of the SQL store: jobs, executions, workflows, workers, deadlines."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ..clock import now_iso
from .contract import INSTANCE_DIGITS, ParentResult, Row
from .sql_base import SQLBase
from .statements import PARENT_DIGESTS, PARENT_RESULTS, chunks, job_result, marks

WORKFLOW_JOB_COLUMNS = """id, name, function_module, function_name, status, attempts,
    max_attempts, started_at, completed_at, worker_id, error, cache, cache_note, cached_from,
    map_param, map_size, map_of, map_index, tags, updated_at"""
"""A job's run state, as ``workflow_jobs`` reads it."""


class SQLReads(SQLBase):
    """Read-only queries of :class:`~gigq_flow.store.sql.SQLStore` (one statement each)."""

    def get_job(self, job_id: str) -> Row | None:
        rows = self._with_results(self.db.read("SELECT * FROM jobs WHERE id = ?", (job_id,)))
        return rows[0] if rows else None

    def _with_results(self, rows: list[Row]) -> list[Row]:
        """Fill the result of the rows of a cached run's jobs from the blobs they reference."""
        wanted = {row["result_digest"] for row in rows
                  if row["result"] is None and row.get("result_digest")}
        blobs: dict[str, Any] = {}
        for chunk in chunks(sorted(wanted)):
            blobs.update((row["digest"], row["data"]) for row in self.db.read(
                f"SELECT digest, data FROM result_blobs WHERE digest IN ({marks(chunk)})",
                chunk))
        for row in rows:
            if row["result"] is None and row.get("result_digest"):
                row["result"] = blobs.get(row["result_digest"])
        return rows

    def get_executions(self, job_id: str) -> list[Row]:
        return self.db.read(
            "SELECT id, job_id, worker_id, status, started_at, completed_at, result, error, "
            "traceback FROM job_executions WHERE job_id = ? ORDER BY started_at, is_current, id",
            (job_id,),
        )

    def attempt_states(self, job_ids: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        found: dict[str, tuple[str | None, str]] = {}
        for chunk in chunks(sorted(job_ids)):
            found.update((row["id"], (row["execution_id"], row["status"])) for row in self.db.read(
                f"SELECT id, execution_id, status FROM jobs WHERE id IN ({marks(chunk)})", chunk))
        return found

    def step_code(self, digest: str) -> bytes | None:
        rows = self.db.read("SELECT data FROM step_code WHERE digest = ?", (digest,))
        return bytes(rows[0]["data"]) if rows else None

    def attempt_output(self, job_id: str, attempt_id: str) -> str:
        rows = self.db.read(
            "SELECT text FROM attempt_output WHERE job_id = ? AND attempt_id = ? ORDER BY seq",
            (job_id, attempt_id))
        return "".join(row["text"] for row in rows)

    def list_jobs(self, status: str | None, limit: int) -> list[Row]:
        if status:
            rows = self.db.read(
                "SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC LIMIT ?",
                (status, limit),
            )
        else:
            rows = self.db.read("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return self._with_results(rows)

    def count_by_status(self) -> dict[str, int]:
        rows = self.db.read("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        return {row["status"]: row["n"] for row in rows}

    def existing_ids(self, job_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(job_ids)):
            rows = self.db.read(f"SELECT id FROM jobs WHERE id IN ({marks(chunk)})", chunk)
            found.update(row["id"] for row in rows)
        return found

    def parent_results(self, job_id: str, *, results: bool = True) -> list[ParentResult]:
        rows = self.db.read(PARENT_RESULTS if results else PARENT_DIGESTS, (job_id,))
        return [ParentResult(**row) for row in rows]

    def list_workflows(self) -> list[Row]:
        rows = self.db.read(
            """SELECT w.id, w.name, w.created_at, j.status, COUNT(j.id) AS n
               FROM workflows w LEFT JOIN jobs j ON j.workflow_id = w.id
               GROUP BY w.id, w.name, w.created_at, j.status
               ORDER BY w.created_at DESC, w.id""")
        workflows: dict[str, Row] = {}
        for row in rows:
            entry = workflows.setdefault(
                row["id"], {"id": row["id"], "name": row["name"],
                            "created_at": row["created_at"], "counts": {}})
            if row["status"] is not None:
                entry["counts"][row["status"]] = row["n"]
        return list(workflows.values())

    def get_workflow(self, workflow_id: str) -> Row | None:
        rows = self.db.read(
            "SELECT id, name, created_at FROM workflows WHERE id = ?", (workflow_id,))
        return rows[0] if rows else None

    def workflow_jobs(self, workflow_id: str, updated_since: str | None = None) -> list[Row]:
        # Every write of a job's state sets updated_at: the live panel reads what changed
        # (one pass over the run's rows, no new index for the claim to keep up).
        since = "" if updated_since is None else "AND updated_at >= ?"
        return self.db.read(
            f"""SELECT {WORKFLOW_JOB_COLUMNS} FROM jobs WHERE workflow_id = ? {since}
                ORDER BY created_at, {self.insertion_order}""",
            (workflow_id,) if updated_since is None else (workflow_id, updated_since),
        )

    def workflow_outline(self, workflow_id: str, *, names: bool = True
                         ) -> list[tuple[Any, ...]]:
        named = "id, name, function_module || '.' || function_name," if names else ""
        return self.db.read_tuples(
            f"""SELECT {named} status, cached_from IS NOT NULL, error IS NOT NULL,
                    map_param IS NOT NULL OR map_of IS NOT NULL
                FROM jobs WHERE workflow_id = ? ORDER BY created_at, {self.insertion_order}""",
            (workflow_id,),
        )

    def workflow_jobs_by_id(self, workflow_id: str, job_ids: Iterable[str]) -> list[Row]:
        found: list[Row] = []
        for chunk in chunks(sorted(job_ids)):
            found.extend(self.db.read(
                f"SELECT {WORKFLOW_JOB_COLUMNS} FROM jobs WHERE workflow_id = ? "
                f"AND id IN ({marks(chunk)})", (workflow_id, *chunk)))
        return found

    def workflow_counts(self, workflow_id: str) -> dict[str, int]:
        rows = self.db.read(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE workflow_id = ? GROUP BY status",
            (workflow_id,))
        return {row["status"]: row["n"] for row in rows}

    def workflow_results(self, workflow_id: str) -> Iterator[tuple[str, str, Any, str | None]]:
        return self.db.stream_tuples(
            f"""SELECT id, name, {job_result("jobs")} AS result, serializer FROM jobs
                WHERE workflow_id = ? AND status = 'completed'
                ORDER BY created_at, {self.insertion_order}""",
            (workflow_id,),
        )

    def workflow_edges(self, workflow_id: str) -> list[tuple[str, str]]:
        return self.db.read_tuples(
            f"""SELECT d.depends_on, d.job_id FROM job_dependencies d
                JOIN jobs j ON j.id = d.job_id WHERE j.workflow_id = ?
                ORDER BY j.created_at, j.{self.insertion_order}, d.position""",
            (workflow_id,),
        )

    def workflow_executions(self, workflow_id: str) -> list[Row]:
        return self.db.read(
            """SELECT e.id, e.job_id, j.name, e.worker_id, e.status, e.started_at,
                    e.completed_at, e.error
                FROM job_executions e JOIN jobs j ON j.id = e.job_id
                WHERE j.workflow_id = ? ORDER BY e.started_at, e.is_current, e.id""",
            (workflow_id,),
        )

    def list_workers(self) -> list[Row]:
        workers = self.db.read("SELECT * FROM workers ORDER BY started_at DESC, instance")
        prefix = f"substr(execution_id, 1, {INSTANCE_DIGITS})"  # the worker's instance
        running = {
            row["instance"]: row["n"] for row in self.db.read(
                f"SELECT {prefix} AS instance, COUNT(*) AS n FROM jobs "
                f"WHERE status = 'running' GROUP BY {prefix}")
        }
        for worker in workers:
            worker["running_jobs"] = running.get(worker["instance"], 0)
        return workers

    # -- deadlines ----------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """Seconds until a delayed retry becomes ready or a live worker's lease may lapse."""
        row = self.db.read(
            """SELECT (SELECT MIN(retry_after) FROM jobs WHERE status = 'pending'
                         AND pending_deps = 0 AND retry_after > ?) AS retry_after,
                      (SELECT MIN(last_heartbeat + lease_timeout) FROM workers
                         WHERE stopped_at IS NULL AND reclaimed_at IS NULL) AS lease""",
            (now_iso(),),
        )[0]
        waits = [row["lease"] - time.time()] if row["lease"] is not None else []
        if row["retry_after"]:
            retry_at = datetime.fromisoformat(row["retry_after"])
            waits.append((retry_at - datetime.now()).total_seconds())
        return max(0.0, min(waits)) if waits else None
