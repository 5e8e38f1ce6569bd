"""``JobQueue``: the user's handle on a queue (GigQ's API), a thin facade over a Store."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigurationError,
    JobNotFoundError,
    SelfDependencyError,
    SerializationError,
)
from .job import Job, JobStatus
from .serialization import dumps_params, loads
from .store import Store, open_store
from .store.base import NewJob, Row

if TYPE_CHECKING:
    from .run import WorkflowRun

logger = logging.getLogger(__name__)

_JSON_COLUMNS = ("params", "dependencies", "result")


def to_new_job(job: Job) -> NewJob:
    """Check and encode a Job for the store; raises before anything is written."""
    if not isinstance(job, Job):
        raise ConfigurationError(f"expected a Job, got {type(job).__name__}")
    for dep in job.dependencies:
        if not isinstance(dep, str):
            raise ConfigurationError(
                f"dependencies of job {job.name!r} must be job ids (str), got {dep!r}"
            )
    if job.id in job.dependencies:
        raise SelfDependencyError(
            f"job {job.name!r} depends on itself; remove its own id from its dependencies"
        )
    return NewJob(
        id=job.id,
        name=job.name,
        function_module=job.function_module,
        function_name=job.function_name,
        params=dumps_params(job.params, job.serializer, job.name),
        priority=job.priority,
        dependencies=tuple(dict.fromkeys(job.dependencies)),
        max_attempts=job.max_attempts,
        timeout=job.timeout,
        description=job.description,
        created_at=job.created_at,
        pass_parent_results=job.pass_parent_results,
        retry_delay=job.retry_delay,
        serializer=job.serializer,
    )


def decode_job_row(row: Row) -> Row:
    """A stored row as GigQ returns it: payload columns decoded, pass_parent_results a bool.

    A column that cannot be decoded (a malformed row written by hand) is kept as its raw
    text, and ``decode_errors`` names it, so one bad row never hides the others.
    """
    serializer = row.get("serializer") or "json"
    errors = []
    for column, column_serializer in (
        ("params", serializer), ("dependencies", "json"), ("result", serializer)
    ):
        if row[column]:
            try:
                row[column] = loads(row[column], column_serializer,
                                    what=f"{column} of job {row['id']}")
            except SerializationError as exc:
                errors.append(str(exc))
    if errors:
        row["decode_errors"] = errors
    flag = row.get("pass_parent_results")
    row["pass_parent_results"] = None if flag is None else bool(flag)
    return row


def result_of(row: Row) -> Any:
    """A stored job's decoded result once it completed, else None."""
    if row["status"] != JobStatus.COMPLETED.value:
        return None
    return loads(row["result"], row.get("serializer"), what=f"result of job {row['id']}")


class JobQueue:
    """A queue in a SQLite file: submit, inspect, cancel and requeue jobs.

    ``initialize=True`` creates the file's schema, or migrates a GigQ 0.5 file in place.
    ``synchronous="FULL"`` makes every commit durable across a power cut (the default,
    ``"NORMAL"``, may lose the last commits then, never the file's consistency).
    """

    def __init__(
        self, db_path: str | os.PathLike[str], initialize: bool = True, *,
        synchronous: str = "NORMAL",
    ) -> None:
        self.db_path = os.fspath(db_path)
        self.store: Store = open_store(db_path, initialize=initialize, synchronous=synchronous)

    def submit(self, job: Job) -> str:
        """Submit one job; returns its id. Its dependencies must already be in the queue."""
        self.store.submit([to_new_job(job)])
        logger.info("submitted job %s (%s)", job.id, job.name)
        return job.id

    def cancel(self, job_id: str) -> bool:
        """Cancel a pending job; its pending descendants become upstream_failed."""
        return self.store.cancel(job_id)

    def requeue_job(self, job_id: str) -> bool:
        """Put a failed, timed-out or cancelled job back to pending, attempts reset,
        together with the descendants its failure had marked upstream_failed."""
        return self.store.requeue(job_id)

    def get_status(self, job_id: str) -> dict[str, Any]:
        """Every column of the job, decoded, with ``exists`` and its ``executions``."""
        row = self.store.get_job(job_id)
        if row is None:
            return {"exists": False}
        status = decode_job_row(row)
        status["exists"] = True
        executions = self.store.get_executions(job_id)
        for execution in executions:
            if execution["result"]:
                execution["result"] = loads(execution["result"], row.get("serializer"),
                                            what=f"result of execution {execution['id']}")
        status["executions"] = executions
        return status

    def get_result(self, job_id: str) -> Any:
        """The job's result once completed, else None; JobNotFoundError (a KeyError) if unknown."""
        row = self.store.get_job(job_id)
        if row is None:
            raise JobNotFoundError(f"no job with id {job_id!r} in {self.db_path}")
        return result_of(row)

    def list_jobs(self, status: JobStatus | str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Jobs newest first, optionally of one status."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigurationError(f"limit must be an int >= 0, got {limit!r}")
        if status is not None:
            try:
                status = JobStatus(status).value
            except ValueError:
                valid = ", ".join(s.value for s in JobStatus)
                raise ConfigurationError(f"unknown status {status!r}; use one of {valid}") from None
        return [decode_job_row(row) for row in self.store.list_jobs(status, limit)]

    def stats(self) -> dict[str, int]:
        """A count for every status (zeros included) and ``total``."""
        counts = {status.value: 0 for status in JobStatus}
        counts.update(self.store.count_by_status())
        counts["total"] = sum(counts.values())
        return counts

    def clear_completed(self, before_timestamp: str | None = None) -> int:
        """Delete completed and cancelled jobs (completed before the timestamp, if given)."""
        return self.store.clear_completed(before_timestamp)

    def list_workflows(self) -> list[dict[str, Any]]:
        """Submitted workflows, newest first: id, name, created_at, counts per status, total."""
        workflows = self.store.list_workflows()
        for workflow in workflows:
            workflow["counts"] = {status.value: workflow["counts"].get(status.value, 0)
                                  for status in JobStatus}
            workflow["total"] = sum(workflow["counts"].values())
        return workflows

    def get_workflow(self, workflow_id: str) -> WorkflowRun:
        """The run handle of a submitted workflow (from any process or kernel)."""
        from .run import WorkflowRun

        return WorkflowRun(self, workflow_id)

    def list_workers(self) -> list[dict[str, Any]]:
        """Worker processes seen by this queue, newest first, each with ``state``:
        ``alive``, ``dead`` (no heartbeat for a lease period: presumed dead, its jobs are
        reclaimed) or ``stopped``, and ``running_jobs``."""
        now = time.time()
        workers = self.store.list_workers()
        for worker in workers:
            if worker["stopped_at"]:
                worker["state"] = "stopped"
            elif now - worker["last_heartbeat"] > worker["lease_timeout"]:
                worker["state"] = "dead"
            else:
                worker["state"] = "alive"
            worker["last_heartbeat"] = datetime.fromtimestamp(worker["last_heartbeat"]).isoformat()
        return workers

    def close(self) -> None:
        """Close this thread's connection to the file."""
        self.store.close()

    def __repr__(self) -> str:
        return f"JobQueue({self.db_path!r})"
