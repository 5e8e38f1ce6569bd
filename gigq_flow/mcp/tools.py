"""GigQ's MCP job tools as plain functions: the names, arguments, defaults and response
fields of gigq-mcp, so that an agent configured for it works with ``gigq-flow mcp``.

Each function checks its arguments first (``invalid_argument``, naming the argument and
the fix), then opens the queue (see :func:`.common.resolve_db`), and returns a dict; it
never raises. Stored values are read without unpickling: a pickled payload shows as a
placeholder, as in the CLI. The docstrings are the descriptions agents read.
"""

from __future__ import annotations

from typing import Any

from ..cli.jobs import REQUEUEABLE, named_function
from ..cli.records import attempt_count_problem, logs_record
from ..decorators import TaskWrapper
from ..errors import TaskDefinitionError
from ..job import Job
from ..job_queue import JobQueue
from ..job_status import JobStatus
from ..locations import describe_location
from .common import (
    DEFAULT_SETTINGS,
    Response,
    ServerSettings,
    ToolFailure,
    check_flag,
    check_integer,
    check_object,
    check_optional_text,
    check_tags,
    check_text,
    load_function,
    no_queue_message,
    ok,
    queue_at,
    resolve_db,
    tool,
    worker_hint,
)

MAX_LIST_LIMIT = 10_000
MAX_PRIORITY = 1_000_000_000
MAX_ATTEMPTS = 1_000
MAX_JOB_SECONDS = 366 * 24 * 3600
EXAMPLE_JOB_ID = "8f1c2d3e-0000-4000-8000-000000000000"
STATUSES = ", ".join(status.value for status in JobStatus)


def check_job_id(job_id: Any) -> str:
    return check_text("job_id", job_id, example=EXAMPLE_JOB_ID)


def job_not_found(job_id: str, location: str, queue: JobQueue | None) -> ToolFailure:
    if queue is None:
        return ToolFailure("not_found", f"no job with id {job_id!r}: {no_queue_message(location)}",
                           {"db_path": describe_location(location)})
    return ToolFailure("not_found", f"no job with id {job_id!r} in {describe_location(location)}; "
                                    "gigq_list_jobs lists the jobs of this queue",
                       {"db_path": describe_location(location)})


def find_job(queue: JobQueue | None, job_id: str, location: str) -> dict[str, Any]:
    """The job's whole record (``executions`` included), or ``not_found``."""
    record = None if queue is None else queue.get_status(job_id, unpickle=False)
    if record is None or not record.get("exists"):
        raise job_not_found(job_id, location, queue)
    return record


@tool
def submit_job(
    function_path: str,
    name: str,
    params: dict[str, Any] | None = None,
    db_path: str | None = None,
    priority: int = 0,
    max_attempts: int = 3,
    timeout: int = 300,
    description: str = "",
    retry_delay: int = 0,
    tags: list[str] | None = None,
    *,
    settings: ServerSettings | None = None,
) -> Response:
    """Submit one job that calls a module-level function with keyword arguments.

    ``function_path`` is ``module.function`` (``module.sub.function``), importable by
    the server (which imports it to check it) and by the workers; ``params`` are its
    keyword arguments; its return value must be JSON-serializable. Higher ``priority``
    runs first; ``max_attempts`` tries before it fails; ``timeout`` seconds per attempt;
    ``retry_delay`` seconds between attempts; ``tags`` name kinds of work (``gigq_set_limit``
    caps how many jobs of a tag run at once). The tool's values (with their defaults)
    set the job's options, also for a ``@task``. Returns ``job_id``, ``db_path`` and
    ``worker_command_example``: nothing runs until a worker does (``gigq_run_worker``
    runs ready jobs inside this server for a bounded time).
    """
    settings = settings or DEFAULT_SETTINGS
    check_text("function_path", function_path, example="mypackage.tasks.resize")
    check_text("name", name, example="resize-cat")
    params = check_object("params", params, example='{"width": 640}')
    location = resolve_db(db_path, settings)
    options: dict[str, Any] = {
        "priority": check_integer("priority", priority, minimum=-MAX_PRIORITY,
                                  maximum=MAX_PRIORITY, example=0),
        "max_attempts": check_integer("max_attempts", max_attempts, minimum=1,
                                      maximum=MAX_ATTEMPTS, example=3),
        "timeout": check_integer("timeout", timeout, minimum=1, maximum=MAX_JOB_SECONDS,
                                 example=300),
        "retry_delay": check_integer("retry_delay", retry_delay, minimum=0,
                                     maximum=MAX_JOB_SECONDS, example=0),
        "description": check_optional_text("description", description,
                                           example="resize the cat picture") or "",
        "tags": check_tags("tags", tags),
    }
    function = load_function(function_path, settings, where="function_path")
    if isinstance(function, TaskWrapper):
        function = function.__wrapped__
    try:
        job = Job(name=name, function=named_function(function_path, function), params=params,
                  **options)
    except TaskDefinitionError as exc:
        raise ToolFailure("import_error",
                          f"function_path: {function_path} cannot be a job: {exc}") from None
    with queue_at(location, create=True) as queue:
        assert queue is not None
        job_id = queue.submit(job)
    return ok(job_id=job_id, db_path=describe_location(location), **worker_hint(location, settings))


@tool
def get_job_status(job_id: str, db_path: str | None = None, *,
                   settings: ServerSettings | None = None) -> Response:
    """The job's whole record (``JobQueue.get_status``): ``status``, ``params``,
    ``result``, ``error``, attempts, times, ``dependencies``, ``workflow_id`` and
    ``executions`` (every attempt). Unknown ids are ``not_found``."""
    job_id = check_job_id(job_id)
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        record = find_job(queue, job_id, location)
    return ok(status=record, db_path=describe_location(location))


@tool
def get_job_logs(job_id: str, attempt: int | None = None, db_path: str | None = None, *,
                 settings: ServerSettings | None = None) -> Response:
    """What an attempt of the job printed to stdout and stderr and logged, in order,
    then its traceback if it failed (``logs``), with ``traceback`` alone, the attempt's
    ``status`` and its number (``attempt``, from 1; null while the job has not started).
    ``attempt`` picks one (default: the latest); a running attempt shows what it wrote so
    far (stored every second). An attempt past the job's is ``invalid_argument``; an
    unknown id is ``not_found``."""
    job_id = check_job_id(job_id)
    if attempt is not None:
        attempt = check_integer("attempt", attempt, minimum=1, maximum=MAX_ATTEMPTS,
                                example=1)
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        record = find_job(queue, job_id, location)
        assert queue is not None
        count = len(record["executions"])
        if attempt is not None and attempt > count:
            raise ToolFailure("invalid_argument",
                              f"attempt {attempt}: "
                              f"{attempt_count_problem(job_id, count, flag='attempt')}",
                              {"argument": "attempt", "attempts": count})
        logs = logs_record(queue, record, attempt if attempt is not None else count or None)
    return ok(**logs, db_path=describe_location(location))


@tool
def get_job_result(job_id: str, db_path: str | None = None, *,
                   settings: ServerSettings | None = None) -> Response:
    """The job's return value once it completed (``result``). While it is not completed,
    ``result`` is null, ``job_status`` says where it is and ``message`` what to do."""
    job_id = check_job_id(job_id)
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        record = find_job(queue, job_id, location)
    status = record["status"]
    if status == JobStatus.COMPLETED.value:
        return ok(job_id=job_id, result=record["result"], db_path=describe_location(location))
    return ok(job_id=job_id, result=None, job_status=status,
              message=_unfinished_message(status, record.get("error")),
              db_path=describe_location(location))


def _unfinished_message(status: str, error: str | None) -> str:
    prefix = f"the result exists once the job is completed; it is {status}"
    if status == JobStatus.PENDING.value:
        return (f"{prefix}: it waits for a worker, its parents or its retry delay "
                "(gigq_queue_stats tells whether a worker runs; gigq_run_worker runs ready "
                "jobs here)")
    if status == JobStatus.RUNNING.value:
        return f"{prefix}: a worker is running it; ask again later"
    if status == JobStatus.UPSTREAM_FAILED.value:
        return (f"{prefix}: a job it depends on failed; requeue that job with "
                "gigq_requeue_job to run both")
    reason = f" ({error.strip().splitlines()[-1]})" if error and error.strip() else ""
    return f"{prefix}{reason}; gigq_requeue_job runs it again"


@tool
def list_jobs(status_filter: str | None = None, limit: int = 100, db_path: str | None = None,
              *, settings: ServerSettings | None = None) -> Response:
    """Jobs newest first, at most ``limit``, optionally only those of one status:
    pending, running, completed, failed, cancelled, timeout or upstream_failed (another
    value is ``invalid_status``). Returns ``jobs`` (full records) and ``count``."""
    status = check_optional_text("status_filter", status_filter, example="pending")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ToolFailure("invalid_status", f"unknown status {status!r}; use one of "
                                            f"{STATUSES}, or leave status_filter out",
                          {"argument": "status_filter"})
    limit = check_integer("limit", limit, minimum=0, maximum=MAX_LIST_LIMIT, example=100)
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        jobs = [] if queue is None else queue.list_jobs(status, limit, unpickle=False)
    return ok(jobs=jobs, count=len(jobs), db_path=describe_location(location))


@tool
def queue_stats(db_path: str | None = None, *,
                settings: ServerSettings | None = None) -> Response:
    """A count of jobs for every status, and ``total``, with ``interpretation`` and
    ``signals``: ``pending_without_runner`` is true when jobs are pending and none
    runs (usually: no worker runs on this queue), ``live_workers`` counts the workers
    whose heartbeat is current. Repeats the worker reminder fields."""
    settings = settings or DEFAULT_SETTINGS
    location = resolve_db(db_path, settings)
    with queue_at(location, create=False) as queue:
        if queue is None:
            stats = {status.value: 0 for status in JobStatus} | {"total": 0}
            live = 0
        else:
            stats = queue.stats()
            live = sum(worker["state"] == "alive" for worker in queue.list_workers())
    pending, running = stats["pending"], stats["running"]
    response = ok(
        stats=stats, db_path=describe_location(location),
        interpretation=_interpretation(pending, running, live, location, settings),
        signals={"pending_without_runner": pending > 0 and running == 0,
                 "live_workers": live},
        **worker_hint(location, settings),
    )
    if queue is None:
        response["message"] = no_queue_message(location)
    return response


def _interpretation(pending: int, running: int, live: int, location: str,
                    settings: ServerSettings) -> str:
    if pending and not running and not live:
        return (f"{pending} job(s) pending, none running, and no live worker on this queue: "
                f"start one with '{worker_hint(location, settings)['worker_command_example']}'"
                ", or call gigq_run_worker to run the ready jobs inside this server")
    if pending and not running:
        return (f"{pending} job(s) pending, none running, {live} live worker(s): the pending "
                "jobs wait for their parents or a retry delay, or are about to be claimed")
    if pending:
        return f"jobs are being processed: {running} running, {pending} pending"
    if running:
        return f"no backlog: {running} running, nothing waiting"
    return "idle: nothing pending or running"


@tool
def cancel_job(job_id: str, db_path: str | None = None, running: bool = False, *,
               settings: ServerSettings | None = None) -> Response:
    """Cancel a pending job; the pending jobs that depend on it become upstream_failed.
    With ``running`` true a running job is cancelled too: its attempt ends cancelled at
    once, its step's ``check_cancelled()`` raises within a second and whatever it returns
    is discarded. Another status (or a running job without ``running``) is
    ``cancel_failed`` (with its status); an unknown id is ``not_found``."""
    job_id = check_job_id(job_id)
    running = check_flag("running", running, meaning="cancel a running job too")
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        find_job(queue, job_id, location)
        assert queue is not None
        if queue.cancel(job_id, running=running):
            return ok(job_id=job_id, cancelled=True, db_path=describe_location(location))
        status = queue.status_of(job_id) or "gone"
    if running:
        message = f"job {job_id} is {status}; only pending and running jobs can be cancelled"
    elif status == JobStatus.RUNNING.value:
        message = (f"job {job_id} is running, and without running=true only pending jobs "
                   "can be cancelled: pass running=true to stop it")
    else:
        message = f"job {job_id} is {status}; only pending jobs can be cancelled"
    raise ToolFailure("cancel_failed", message,
                      {"db_path": describe_location(location), "job_status": status})


@tool
def requeue_job(job_id: str, db_path: str | None = None, *,
                settings: ServerSettings | None = None) -> Response:
    """Put a failed, timed-out or cancelled job back to pending with its attempts reset,
    together with the jobs its failure had marked upstream_failed. Another status is
    ``requeue_failed`` (with the status); an unknown id is ``not_found``."""
    settings = settings or DEFAULT_SETTINGS
    job_id = check_job_id(job_id)
    location = resolve_db(db_path, settings)
    with queue_at(location, create=False) as queue:
        find_job(queue, job_id, location)
        assert queue is not None
        if queue.requeue_job(job_id):
            return ok(job_id=job_id, requeued=True, db_path=describe_location(location),
                      **worker_hint(location, settings))
        status = queue.status_of(job_id) or "gone"
    message = f"job {job_id} is {status}; only {REQUEUEABLE} jobs can be requeued"
    if status == JobStatus.UPSTREAM_FAILED.value:
        message += "; requeue the job it depends on that failed instead"
    raise ToolFailure("requeue_failed", message,
                      {"db_path": describe_location(location), "job_status": status})

