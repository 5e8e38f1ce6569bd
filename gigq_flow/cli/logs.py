"""``gigq-flow logs ID [--attempt N] [--follow] [--json]``: what an attempt of a job
printed and logged, then its traceback if it failed (:meth:`JobQueue.get_logs`).

``--follow`` prints what is stored, then polls and prints only the new text until the
attempt has ended (its status is no longer running, or a later attempt started); it
exits 0 when the attempt completed and 1 when it ended otherwise (failed, timed out,
or the job was cancelled before it started), as ``workflow status --wait`` does. Without
an attempt yet, it waits for the first one. Without ``--follow`` the exit status is 0
whatever the attempt's outcome: printing the text succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..job_queue import JobQueue
from ..job_status import JobStatus
from .common import PROG, UsageError, open_queue, positive_int, print_json
from .records import attempt_count_problem, find_job, logs_record

FOLLOW_INTERVAL = 0.5
"""Seconds between two reads of a followed attempt (the worker stores output every second)."""
RUNNING = JobStatus.RUNNING.value
COMPLETED = JobStatus.COMPLETED.value


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "logs", help="what a job's attempt printed and logged, then its traceback if it "
                     "failed; --follow streams a running attempt")
    p.add_argument("job_id")
    p.add_argument("--attempt", type=positive_int, metavar="N",
                   help="attempt N, from 1 (default: the latest)")
    p.add_argument("--follow", "-f", action="store_true",
                   help="print new text as the attempt writes it until it ends; exit 0 "
                        "if it completed, 1 if it failed, timed out or was cancelled")
    p.add_argument("--json", action="store_true",
                   help="print job_id, attempt, status, logs and traceback as a JSON object")
    p.set_defaults(handler=cmd_logs)


def cmd_logs(args: argparse.Namespace) -> int:
    if args.follow and args.json:
        raise UsageError("--follow and --json cannot be combined; pass one of them "
                         f"(after --follow ends, '{PROG} logs ID --json' gives the record)")
    queue = open_queue(args)
    info = find_job(queue, args.job_id)
    number = chosen_attempt(info, args.attempt)
    if args.follow:
        return follow(queue, args.job_id, number)
    record = logs_record(queue, info, number)
    if args.json:
        print_json(record)
    else:
        write(record["logs"], end=True)
    return 0


def chosen_attempt(info: dict[str, Any], attempt: int | None) -> int | None:
    """``--attempt`` checked against the job's attempts, else the latest; None while the
    job has none."""
    count = len(info["executions"])
    if attempt is None:
        return count or None
    if attempt > count:
        raise UsageError(f"--attempt {attempt}: "
                         f"{attempt_count_problem(info['id'], count, flag='--attempt')}")
    return attempt


def follow(queue: JobQueue, job_id: str, number: int | None) -> int:
    """Print the attempt's text as it grows until the attempt ends; the exit status."""
    printed = 0
    while True:
        info = find_job(queue, job_id)  # the state first: text read after an end is final
        executions = info["executions"]
        if number is None and executions:
            number = 1
        if number is None:
            if info["status"] != JobStatus.PENDING.value:  # cancelled, upstream_failed
                return 1
            time.sleep(FOLLOW_INTERVAL)
            continue
        execution = executions[number - 1]
        ended = execution["status"] != RUNNING or len(executions) > number
        text = queue.get_logs(job_id, number)
        write(text[printed:])
        printed = max(printed, len(text))
        if ended:
            if text and not text.endswith("\n"):
                write("\n")
            return 0 if execution["status"] == COMPLETED else 1
        time.sleep(FOLLOW_INTERVAL)


def write(text: str, *, end: bool = False) -> None:
    """``text`` as stored; with ``end``, a newline after text that lacks one, so that the
    shell's prompt starts its own line."""
    if end and text and not text.endswith("\n"):
        text += "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
