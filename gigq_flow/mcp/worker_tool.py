"""``gigq_run_worker``: run the queue's ready jobs on worker threads inside the server,
for at most a given number of seconds, so that an agent without a terminal can get its
jobs done.

The worker takes the server's ``--allow-module`` and ``--allow-pickle`` options. It
stops as soon as there is nothing left for it: no job pending, or pending jobs that stay
unready (waiting for a retry delay, or for parents that no worker runs) while nothing
runs. At the time limit, jobs still running go back to the queue, whole: their
attempts' results are discarded, and the response lists them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..job_queue import JobQueue
from ..job_status import JobStatus
from ..locations import describe_location
from ..worker import EXECUTORS, Worker
from .common import (
    DEFAULT_SETTINGS,
    Response,
    ServerSettings,
    check_integer,
    check_seconds,
    described,
    invalid,
    no_queue_message,
    ok,
    queue_at,
    resolve_db,
    tool,
    worker_hint,
)

DEFAULT_RUN_SECONDS = 10.0
MAX_RUN_SECONDS = 300.0
"""A tool call is one request: many clients give up on a request after a minute or a few."""
MAX_RUN_CONCURRENCY = 32
WATCH_INTERVAL = 0.05
IDLE_SECONDS = 0.5
"""Pending jobs unclaimed this long while nothing runs are not ready: the run ends."""
POLLING_INTERVAL = 0.2
STOP_TIMEOUT = 10.0


@tool
def run_worker(seconds: float = DEFAULT_RUN_SECONDS, concurrency: int = 1,
               db_path: str | None = None, executor: str = "threads", *,
               settings: ServerSettings | None = None) -> Response:
    """Run the queue's ready jobs on ``concurrency`` worker threads inside this server
    (``executor="processes"``: each thread's steps in a child process of the server),
    for at most ``seconds`` (above 0, at most 300), then return. It returns sooner when
    nothing is left to run: ``stopped_because`` is ``no_pending_jobs``,
    ``pending_jobs_not_ready`` (they wait for a retry delay or for parents no worker
    runs) or ``time_limit``. Jobs still running at the time limit go back to the queue
    (``returned_to_queue``); call again with more seconds, or start a worker. The
    server's ``--allow-module`` and ``--allow-pickle`` options apply: a job outside the
    allowed modules fails. ``stats_before`` and ``stats_after`` count the jobs by status.
    """
    settings = settings or DEFAULT_SETTINGS
    seconds = check_seconds("seconds", seconds, maximum=MAX_RUN_SECONDS, example=30)
    concurrency = check_integer("concurrency", concurrency, minimum=1,
                                maximum=MAX_RUN_CONCURRENCY, example=2)
    if executor not in EXECUTORS:
        raise invalid("executor", f"must be 'threads' or 'processes', got {described(executor)}",
                      "pass \"processes\" to run each step in a child process")
    location = resolve_db(db_path, settings)
    with queue_at(location, create=False) as queue:
        if queue is None:
            return ok(stopped_because="no_pending_jobs", elapsed_seconds=0.0,
                      returned_to_queue=[], message=no_queue_message(location),
                      db_path=describe_location(location))
        return _run(queue, seconds, concurrency, executor, location, settings)


def _run(queue: JobQueue, seconds: float, concurrency: int, executor: str, location: str,
         settings: ServerSettings) -> Response:
    before = queue.stats()
    worker = Worker(queue, worker_id=f"mcp-{uuid.uuid4().hex[:8]}",
                    polling_interval=POLLING_INTERVAL, concurrency=concurrency,
                    grace_period=0, allowed_modules=settings.allowed_modules,
                    allow_pickle=settings.allow_pickle, executor=executor)
    started = time.monotonic()
    worker.start_background()
    running: list[str] = []
    try:
        reason = _watch(queue, worker.worker_id, started + seconds)
        running = _running_on(queue, worker.worker_id)
    finally:
        worker.stop(wait=True, timeout=STOP_TIMEOUT)  # returns running jobs to the queue
        worker.close()
    unfinished = [job_id for job_id in running
                  if queue.get_status(job_id, unpickle=False).get("status")
                  == JobStatus.PENDING.value]
    elapsed = round(time.monotonic() - started, 3)
    after = queue.stats()
    response = ok(
        worker_id=worker.worker_id, seconds=seconds, concurrency=concurrency, executor=executor,
        elapsed_seconds=elapsed, stopped_because=reason, returned_to_queue=unfinished,
        stats_before=before, stats_after=after, message=_message(reason, after, unfinished),
        db_path=describe_location(location),
    )
    if after["pending"]:
        response.update(worker_hint(location, settings))
    return response


def _watch(queue: JobQueue, worker_id: str, deadline: float) -> str:
    """Wait until the run should end; returns why."""
    idle_since: float | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            return "time_limit"
        stats = queue.stats()
        # Pending again after the check of its own jobs: one of them ended in between and
        # made more (a retry, a map's items); read once, that would end the run early.
        if (stats["pending"] == 0 and not _running_on(queue, worker_id)
                and queue.stats()["pending"] == 0):
            return "no_pending_jobs"
        if stats["running"] == 0:  # pending jobs, and nothing runs them here or elsewhere
            idle_since = idle_since if idle_since is not None else now
            if now - idle_since >= IDLE_SECONDS:
                return "pending_jobs_not_ready"
        else:
            idle_since = None
        time.sleep(max(0.0, min(WATCH_INTERVAL, deadline - time.monotonic())))


def _running_on(queue: JobQueue, worker_id: str) -> list[str]:
    """Ids of the jobs the worker's threads (``worker_id`` or ``worker_id-N``) run now."""
    return [job["id"] for job in queue.list_jobs(JobStatus.RUNNING, limit=10_000, unpickle=False)
            if _mine(job, worker_id)]


def _mine(job: dict[str, Any], worker_id: str) -> bool:
    owner = job.get("worker_id") or ""
    return owner == worker_id or owner.startswith(worker_id + "-")


def _message(reason: str, after: dict[str, int], unfinished: list[str]) -> str:
    if reason == "no_pending_jobs":
        return "every job that was pending has run; nothing is left pending"
    if reason == "pending_jobs_not_ready":
        return (f"{after['pending']} job(s) pending but not ready (waiting for a retry delay, "
                "or for parents that no worker runs); call again later or start a worker")
    returned = (f"; {len(unfinished)} job(s) still running went back to the queue and need "
                "more time: call again with more seconds, or start a worker"
                if unfinished else "")
    return f"time limit reached with {after['pending']} job(s) pending{returned}"
