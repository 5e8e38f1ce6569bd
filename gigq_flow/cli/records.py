"""Stored jobs and results as the CLI shows them: JSON payloads decoded, pickled ones not.

Unpickling runs code chosen by whoever wrote the file, and looking at a queue must
never do that: the CLI reads with ``unpickle=False``, so a pickled value shows as a
placeholder. (Workers refuse pickled jobs unless started with ``--allow-pickle``;
Python code reads them with ``JobQueue``.)
"""

from __future__ import annotations

from typing import Any

from ..job_queue import JobQueue
from ..locations import describe_location
from ..run import WorkflowRun
from .common import UsageError


def find_job(queue: JobQueue, job_id: str) -> dict[str, Any]:
    """The job with every attempt (``executions``); a usage error when there is none,
    in GigQ's words."""
    record = queue.get_status(job_id, unpickle=False)
    if not record.pop("exists"):
        raise UsageError(f"Job {job_id} not found in {describe_location(queue.db_path)}")
    return record


def list_jobs(queue: JobQueue, status: str | None, limit: int) -> list[dict[str, Any]]:
    return queue.list_jobs(status, limit, unpickle=False)


def workflow_results(run: WorkflowRun) -> dict[str, Any]:
    """Task name -> result of the run's completed jobs (a list where names repeat)."""
    return run.results(unpickle=False)


def attempt_count_problem(job_id: str, count: int, *, flag: str) -> str:
    """Why an attempt number past ``count`` names no attempt, and which ones do."""
    if not count:
        return (f"job {job_id} has not started yet: it has no attempts; leave {flag} out "
                "(the logs are empty until a worker runs it)")
    return (f"job {job_id} has {count} attempt(s); pass {flag} 1 to {count}, or leave it "
            "out for the latest")


def logs_record(queue: JobQueue, info: dict[str, Any], attempt: int | None) -> dict[str, Any]:
    """``logs --json`` and the MCP tool: attempt ``attempt`` (from 1) of the job ``info``
    (:func:`find_job`), or None while it has none. ``logs`` is :meth:`JobQueue.get_logs`
    (the output, then the traceback of a failure), ``traceback`` the traceback alone,
    ``status`` the attempt's (the job's while it has no attempt)."""
    if attempt is None:
        return {"job_id": info["id"], "attempt": None, "status": info["status"], "logs": "",
                "traceback": None}
    execution = info["executions"][attempt - 1]
    return {"job_id": info["id"], "attempt": attempt, "status": execution["status"],
            "logs": queue.get_logs(info["id"], attempt), "traceback": execution["traceback"]}
