"""``JobQueue``: the user's handle on a queue (GigQ's API and module path
``gigq_flow.job_queue``), a thin facade over a Store."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .checks import check_int, check_number
from .codec import FunctionRef, decode_executions, decode_job_row, result_of, to_new_job
from .errors import ConfigurationError, JobNotFoundError
from .gc_pause import collector_paused
from .job import Job, cache_mode
from .job_status import JobStatus
from .run import WorkflowRun
from .store import Store, WorkflowRecord, open_store

logger = logging.getLogger(__name__)


class JobQueue:
    """A queue: submit, inspect, cancel and requeue jobs.

    ``db_path`` is a SQLite file (created if missing) or a ``postgresql://`` URL.
    ``initialize=True`` creates the schema, or migrates a GigQ 0.5 file in place.
    ``synchronous="FULL"`` makes every commit to a SQLite file durable across a power cut
    (the default, ``"NORMAL"``, may lose the last commits then, never the file's
    consistency); it is refused for a PostgreSQL URL, whose durability the server sets.
    """

    def __init__(
        self, db_path: str | os.PathLike[str], initialize: bool = True, *,
        synchronous: str | None = None,
    ) -> None:
        self.db_path = os.fspath(db_path)
        self.store: Store = open_store(db_path, initialize=initialize, synchronous=synchronous)
        """The backend: the core (queue, worker, run) speaks to it; everything else uses
        the methods of this class."""

    def submit(self, job: Job) -> str:
        """Submit one job; returns its id. Its dependencies must already be in the queue."""
        self.store.submit([to_new_job(job)])
        logger.info("submitted job %s (%s)", job.id, job.name)
        return job.id

    def cancel(self, job_id: str, running: bool = False) -> bool:
        """Cancel a pending job (GigQ's meaning: False for any other); with
        ``running=True`` a running one too: its attempt ends ``cancelled`` at once, the
        step's ``check_cancelled()`` raises from then on and whatever it returns is
        discarded. Its pending descendants become upstream_failed."""
        return self.store.cancel(job_id, running=running)

    def requeue_job(self, job_id: str) -> bool:
        """Put a failed, timed-out or cancelled job back to pending, attempts reset,
        together with the descendants its failure had marked upstream_failed."""
        return self.store.requeue(job_id)

    def submit_workflow(self, name: str, jobs: Sequence[Job], *,
                        cache: bool | str = False) -> str:
        """Submit ``jobs`` as one workflow named ``name``, atomically; returns its id.
        ``cache`` as in ``Workflow.submit``. (``Workflow.submit`` checks the DAG first and
        returns a run handle.)"""
        mode = cache_mode(cache)
        record = WorkflowRecord(
            id=str(uuid.uuid4()), name=name, created_at=datetime.now().isoformat()
        )
        functions: dict[Callable | str, FunctionRef] = {}  # each looked at once
        with collector_paused():
            self.store.submit([to_new_job(job, mode, functions) for job in jobs], record)
        logger.info("submitted workflow %s (%s): %d jobs", record.id, name, len(jobs))
        return record.id

    def set_limit(self, tag: str, max_running: int | None) -> None:
        """Let at most ``max_running`` jobs tagged ``tag`` run at once, across every
        worker thread, process and host of this queue (None removes the limit). Jobs
        already running stay running; the limit holds for the next claims."""
        if not isinstance(tag, str) or not tag.strip() or "\n" in tag:
            raise ConfigurationError(f"a tag is a non-empty, one-line string, got {tag!r}")
        if max_running is not None:
            check_int(f"the limit of tag {tag!r}", max_running, minimum=1)
        self.store.set_limit(tag, max_running)

    def limits(self) -> dict[str, int]:
        """Each limited tag and how many of its jobs may run at once (a map waiting for
        its items shows its ``max_active`` as ``map:<id>``)."""
        return self.store.limits()

    def running_by_tag(self) -> dict[str, int]:
        """How many jobs carrying each limited tag run now (tags without a limit, and
        limited tags with nothing running, are left out)."""
        return self.store.running_by_tag()

    def existing_ids(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` are jobs of this queue."""
        return self.store.existing_ids(job_ids)

    def get_status(self, job_id: str, *, unpickle: bool = True) -> dict[str, Any]:
        """Every column of the job, decoded, with ``exists`` and its ``executions``.

        ``unpickle=False`` shows pickled payloads as a placeholder instead of unpickling
        them (looking at a queue one does not trust)."""
        row = self.store.get_job(job_id)
        if row is None:
            return {"exists": False}
        status = decode_job_row(row, unpickle=unpickle)
        status["exists"] = True
        status["executions"] = decode_executions(
            self.store.get_executions(job_id), row.get("serializer"), unpickle=unpickle)
        return status

    def get_logs(self, job_id: str, attempt: int | None = None) -> str:
        """What the job's latest attempt (or attempt ``attempt``, from 1) printed to
        stdout and stderr and logged, in order, then its traceback if it failed; stored
        while it runs, so a running attempt shows what it wrote so far (within a second).
        JobNotFoundError (a KeyError) for an unknown id."""
        if attempt is not None:
            check_int("attempt", attempt, minimum=1)
        if self.store.get_job(job_id) is None:
            raise JobNotFoundError(f"no job with id {job_id!r} in {self.db_path}")
        executions = self.store.get_executions(job_id)
        if attempt is not None and attempt > len(executions):
            raise ConfigurationError(
                f"job {job_id} has {len(executions)} attempt(s); ask for attempt 1 to "
                f"{len(executions)}, or none for the latest" if executions else
                f"job {job_id} has not started yet: it has no attempts")
        if not executions:
            return ""
        execution = executions[-1 if attempt is None else attempt - 1]
        text = self.store.attempt_output(job_id, execution["id"])
        if execution["traceback"]:
            text += ("\n" if text and not text.endswith("\n") else "") + execution["traceback"]
        return text

    def status_of(self, job_id: str) -> str | None:
        """The job's status now (one row read, no attempts), or None for an unknown id."""
        row = self.store.get_job(job_id)
        return None if row is None else row["status"]

    def get_result(self, job_id: str) -> Any:
        """The job's result once completed, else None; JobNotFoundError (a KeyError) if unknown."""
        row = self.store.get_job(job_id)
        if row is None:
            raise JobNotFoundError(f"no job with id {job_id!r} in {self.db_path}")
        return result_of(row)

    def list_jobs(
        self, status: JobStatus | str | None = None, limit: int = 100, *, unpickle: bool = True
    ) -> list[dict[str, Any]]:
        """Jobs newest first, optionally of one status (``unpickle`` as in get_status)."""
        check_int("limit", limit, minimum=0)
        if status is not None:
            try:
                status = JobStatus(status).value
            except ValueError:
                valid = ", ".join(s.value for s in JobStatus)
                raise ConfigurationError(f"unknown status {status!r}; use one of {valid}") from None
        return [decode_job_row(row, unpickle=unpickle)
                for row in self.store.list_jobs(status, limit)]

    def stats(self) -> dict[str, int]:
        """A count for every status (zeros included) and ``total``."""
        counts = {status.value: 0 for status in JobStatus}
        counts.update(self.store.count_by_status())
        counts["total"] = sum(counts.values())
        return counts

    def clear_completed(self, before_timestamp: str | None = None) -> int:
        """Delete completed and cancelled jobs (completed before the timestamp, if given).
        Results that cache entries still reference stay, stored once."""
        return self.store.clear_completed(before_timestamp)

    def clear_cache(self, older_than: float | timedelta | None = None) -> int:
        """Forget the results of earlier runs that a cached run would reuse: every entry,
        or those not used for ``older_than`` (seconds or a timedelta). Jobs keep their
        results; returns how many entries were removed."""
        cutoff = None
        if older_than is not None:
            seconds = (older_than.total_seconds() if isinstance(older_than, timedelta)
                       else check_number("older_than", older_than, kind="a number of seconds"))
            cutoff = (datetime.now() - timedelta(seconds=seconds)).isoformat(
                timespec="microseconds")
        return self.store.clear_cache(cutoff)

    def cache_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The results a cached run can reuse, most recently used first: key, step (its
        function), name, the run and job that made it, created_at, used_at (renewed by a reuse
        at most hourly), result_digest, serializer and size."""
        check_int("limit", limit, minimum=0)
        return self.store.cache_entries(limit)

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
        """Close this thread's connection to the queue."""
        self.store.close()

    def __repr__(self) -> str:
        return f"JobQueue({self.db_path!r})"
