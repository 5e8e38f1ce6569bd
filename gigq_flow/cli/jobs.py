"""GigQ's job commands: submit, status, list, stats, cancel, requeue, clear.

What they print on stdout is GigQ 0.5.1's text (see :mod:`.views`). A refusal (``Could
not cancel job ID: ...``) or an unknown id (``Job ID not found in ...``) is one
``gigq-flow: error:`` line on stderr that starts with GigQ's words; other bad input is
one line that names the fix.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..decorators import TaskWrapper
from ..job import Job
from ..job_status import FINAL_FAILURES, JobStatus
from ..locations import describe_location, is_postgres_url
from ..shipping import by_value_only
from .common import (
    RefusedError,
    UsageError,
    add_cwd_to_path,
    non_negative_int,
    open_queue,
    positive_int,
    print_json,
)
from .records import find_job, list_jobs
from .views import job_view, jobs_table, show, stats_table

DEFAULT_LIST_LIMIT = 100
REQUEUEABLE = ", ".join(status.value for status in FINAL_FAILURES)


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("submit", help="submit a job that calls module.function")
    p.add_argument("function", help="the function to run, as module.function (importable here "
                                    "and by the workers)")
    p.add_argument("--name", metavar="NAME", help="job name (default: the function's name)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword argument; VALUE is read as JSON when it parses "
                        "(3, true, [1,2], {\"a\":1}), else as a string; repeatable")
    p.add_argument("--priority", type=int, metavar="N", help="higher runs first (default: 0)")
    p.add_argument("--max-attempts", type=positive_int, metavar="N",
                   help="attempts before failing (default: 3)")
    p.add_argument("--timeout", type=positive_int, metavar="SECONDS",
                   help="seconds per attempt (default: 300)")
    p.add_argument("--retry-delay", type=non_negative_int, metavar="SECONDS",
                   help="seconds before a failed attempt is retried (default: 0)")
    p.add_argument("--description", metavar="TEXT", help="free text shown by status")
    p.add_argument("--depends-on", action="append", default=[], metavar="JOB_ID",
                   help="id of a queued job that must complete first; repeatable")
    p.add_argument("--tag", action="append", metavar="TAG",
                   help="a tag of the job ('limits set TAG N' caps how many jobs of a tag "
                        "run at once; replaces a @task's own tags); repeatable")
    p.set_defaults(handler=cmd_submit)

    p = commands.add_parser("status", help="show one job")
    p.add_argument("job_id")
    p.add_argument("--show-params", action="store_true", help="show the job's parameters")
    p.add_argument("--show-result", action="store_true", help="show the job's result")
    p.add_argument("--show-executions", action="store_true", help="show every attempt")
    p.add_argument("--json", action="store_true", help="print the whole record as JSON")
    p.set_defaults(handler=cmd_status)

    p = commands.add_parser("list", help="list jobs, newest first")
    p.add_argument("--status", choices=[status.value for status in JobStatus],
                   help="only jobs in this status")
    p.add_argument("--limit", type=non_negative_int, metavar="N", default=DEFAULT_LIST_LIMIT,
                   help=f"at most this many jobs (default: {DEFAULT_LIST_LIMIT})")
    p.add_argument("--json", action="store_true", help="print the jobs as a JSON list")
    p.set_defaults(handler=cmd_list)

    p = commands.add_parser("stats", help="count the jobs in each status")
    p.add_argument("--json", action="store_true", help="print the counts as a JSON object")
    p.set_defaults(handler=cmd_stats)

    p = commands.add_parser("cancel", help="cancel a pending job (its dependents become "
                                           "upstream_failed)")
    p.add_argument("job_id")
    p.add_argument("--running", action="store_true",
                   help="a running job too: its attempt ends cancelled at once, the step's "
                        "check_cancelled() raises and its outcome is discarded")
    p.set_defaults(handler=cmd_cancel)

    p = commands.add_parser("requeue", help="put a failed, timed-out or cancelled job back to "
                                            "pending, with its upstream_failed dependents")
    p.add_argument("job_id")
    p.set_defaults(handler=cmd_requeue)

    p = commands.add_parser("clear", help="delete completed and cancelled jobs")
    p.add_argument("--before", metavar="TIMESTAMP",
                   help="only jobs finished before this ISO timestamp (2024-05-01 or "
                        "2024-05-01T12:00), or more than this many days ago (7, 0.5)")
    p.set_defaults(handler=cmd_clear)


# -- submit ---------------------------------------------------------------------------------
def import_function(spec: str) -> Callable[..., Any]:
    """``module.function`` -> the function, imported the way a worker will import it."""
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise UsageError(
            f"function {spec!r} must be given as module.function, e.g. mypackage.tasks.resize"
        )
    add_cwd_to_path()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"cannot import {spec!r}: {exc}; check the name, and that its directory is the "
            "working directory or on PYTHONPATH"
        ) from exc
    except Exception as exc:
        raise UsageError(
            f"cannot import {spec!r}: importing {module_name} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        function = getattr(module, function_name)
    except AttributeError:
        raise UsageError(f"cannot import {spec!r}: module {module_name} has no attribute "
                         f"{function_name!r}") from None
    if not callable(function):
        raise UsageError(f"{spec!r} is a {type(function).__name__}, not a function")
    return function


def named_function(spec: str, function: Callable[..., Any]) -> Callable[..., Any] | str:
    """What a job named by its path ``spec`` runs: the function, or the path itself when
    the object is a lambda bound to that name (its path is how workers find it; as an
    object it would be shipped by value)."""
    return spec if by_value_only(function) else function


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_value(text: str) -> Any:
    """JSON when it parses (NaN and Infinity excepted), else the text itself; never eval."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(
                f"--param {item!r} is not KEY=VALUE; write e.g. --param count=3 "
                "or --param name=alice"
            )
        if not key.isidentifier():
            raise UsageError(
                f"--param {item!r}: {key!r} is not a parameter name "
                "(letters, digits and underscores, not starting with a digit)"
            )
        if key in params:
            raise UsageError(f"--param {key} is given twice; give each parameter once")
        params[key] = parse_value(text)
    return params


def cmd_submit(args: argparse.Namespace) -> int:
    function = import_function(args.function)
    params = parse_params(args.param)
    options: dict[str, Any] = {}
    if isinstance(function, TaskWrapper):  # a @task keeps its own options unless overridden
        options = dict(function.options)
        function = function.__wrapped__
    given = {
        "name": args.name, "priority": args.priority, "max_attempts": args.max_attempts,
        "timeout": args.timeout, "retry_delay": args.retry_delay,
        "description": args.description, "tags": args.tag,
    }
    options.update({key: value for key, value in given.items() if value is not None})
    options.setdefault("name", getattr(function, "__name__", args.function))
    job = Job(function=named_function(args.function, function), params=params,
              dependencies=args.depends_on, **options)
    if args.depends_on and not is_postgres_url(args.db) and not os.path.exists(args.db):
        raise UsageError(f"--depends-on {args.depends_on[0]}: no such job, "
                         f"{describe_location(args.db)} does not exist yet")
    queue = open_queue(args, create=True)
    job_id = queue.submit(job)
    print(f"Job submitted: {job_id}")
    return 0


# -- reading jobs ---------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    info = find_job(open_queue(args), args.job_id)
    if args.json:
        print_json(info)
        return 0
    show(job_view(info, params=args.show_params, result=args.show_result,
                  executions=args.show_executions))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    queue = open_queue(args)
    jobs = list_jobs(queue, args.status, args.limit)
    if args.json:
        print_json(jobs)
        return 0
    if not jobs:
        print("No jobs found.")
        return 0
    show([jobs_table(jobs)])
    if args.limit and len(jobs) == args.limit and sys.stdout.isatty():  # a hint for people
        print(f"the newest {args.limit} jobs; --limit N shows more", file=sys.stderr)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    counts = open_queue(args).stats()
    if args.json:
        print_json(counts)
        return 0
    show([stats_table(counts)])
    return 0


# -- changing jobs --------------------------------------------------------------------------
def cmd_cancel(args: argparse.Namespace) -> int:
    queue = open_queue(args)
    find_job(queue, args.job_id)
    if not queue.cancel(args.job_id, running=args.running):
        status = queue.status_of(args.job_id) or "gone"
        if args.running:
            raise RefusedError(f"Could not cancel job {args.job_id}: it is {status}, and only "
                               "pending and running jobs can be cancelled")
        hint = "; add --running to end a running one" if status == "running" else ""
        raise RefusedError(f"Could not cancel job {args.job_id}: it is {status}, and only "
                           f"pending jobs can be cancelled{hint}")
    print(f"Job {args.job_id} cancelled.")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    queue = open_queue(args)
    find_job(queue, args.job_id)
    if not queue.requeue_job(args.job_id):
        status = queue.status_of(args.job_id) or "gone"
        message = (f"Could not requeue job {args.job_id}: it is {status}, and only "
                   f"{REQUEUEABLE} jobs can be requeued")
        if status == JobStatus.UPSTREAM_FAILED.value:
            message += "; requeue the job it depends on that failed instead"
        raise RefusedError(message)
    print(f"Job {args.job_id} requeued.")
    return 0


def parse_before(text: str) -> str:
    """``--before``: a number of days ago (GigQ's meaning) or an ISO date/time."""
    try:
        days = float(text)
    except ValueError:
        pass
    else:
        if not 0 <= days < 1e6:
            raise UsageError(f"--before {text}: a number of days must be >= 0")
        return (datetime.now() - timedelta(days=days)).isoformat()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--before {text!r} is neither a number of days nor an ISO timestamp; "
            "write e.g. --before 7 or --before 2024-05-01T12:00"
        ) from None
    if moment.tzinfo is not None:  # the queue stores local times without an offset
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.isoformat()


def cmd_clear(args: argparse.Namespace) -> int:
    before = parse_before(args.before) if args.before is not None else None
    cleared = open_queue(args).clear_completed(before)
    print(f"Cleared {cleared} completed jobs.")  # GigQ's words: cancelled jobs go too
    return 0
