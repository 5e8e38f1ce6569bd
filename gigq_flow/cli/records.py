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
