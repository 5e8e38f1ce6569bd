"""Stored jobs and results as the CLI shows them: JSON payloads decoded, pickled ones not.

Unpickling runs code chosen by whoever wrote the file, and looking at a queue must
never do that: the CLI shows a pickled value as a placeholder. (Workers refuse pickled
jobs unless started with ``--allow-pickle``; Python code reads them with ``JobQueue``.)
"""

from __future__ import annotations

from typing import Any

from ..queue import JobQueue
from ..run import WorkflowRun, by_name
from ..serialization import loads
from ..store.base import Row
from .common import UsageError, describe_location

PAYLOAD_COLUMNS = ("params", "result")
MALFORMED_PREVIEW = 40


def shown(data: str | bytes | None, serializer: str | None) -> Any:
    """A stored payload, decoded when it is JSON."""
    if data is None or data == "":
        return None
    if (serializer or "json") == "pickle":
        return f"<pickled, {len(data)} bytes; not decoded by the CLI>"
    try:
        return loads(data, "json")
    except (ValueError, TypeError):  # a hand-edited row must not hide the whole queue
        return f"<not JSON: {str(data)[:MALFORMED_PREVIEW]!r}>"


def job_record(row: Row) -> dict[str, Any]:
    """A ``jobs`` row with its JSON columns decoded (GigQ's shape), pickles left alone."""
    record = dict(row)
    serializer = record.get("serializer")
    for column in PAYLOAD_COLUMNS:
        record[column] = shown(record[column], serializer)
    record["dependencies"] = shown(record.get("dependencies"), "json") or []
    flag = record.get("pass_parent_results")
    record["pass_parent_results"] = None if flag is None else bool(flag)
    return record


def find_job(queue: JobQueue, job_id: str) -> dict[str, Any]:
    """The job with every attempt (``executions``); a usage error when there is none."""
    row = queue.store.get_job(job_id)
    if row is None:
        raise UsageError(f"no job with id {job_id!r} in {describe_location(queue.db_path)}")
    record = job_record(row)
    executions = queue.store.get_executions(job_id)
    for execution in executions:
        execution["result"] = shown(execution["result"], row.get("serializer"))
    record["executions"] = executions
    return record


def list_jobs(queue: JobQueue, status: str | None, limit: int) -> list[dict[str, Any]]:
    return [job_record(row) for row in queue.store.list_jobs(status, limit)]


def workflow_results(run: WorkflowRun) -> dict[str, Any]:
    """Task name -> result of the run's completed jobs (a list where names repeat)."""
    return by_name([(row["name"], shown(row["result"], row["serializer"]))
                    for row in run.queue.store.workflow_results(run.id)])
