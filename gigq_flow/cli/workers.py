"""Worker commands: ``worker`` runs jobs (GigQ's command), ``workers`` lists the worker
processes that have used the queue.

``worker`` reads GigQ's documented variables as defaults under its flags: ``--worker-id``
over ``$GIGQ_WORKER_ID``, ``--polling-interval`` over ``$GIGQ_POLLING_INTERVAL``.
"""

from __future__ import annotations

import argparse

from rich.text import Text

from ..worker import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_LEASE_TIMEOUT,
    DEFAULT_POLLING_INTERVAL,
    EXECUTORS,
    Worker,
)
from .common import (
    POLLING_INTERVAL_ENV_VAR,
    WORKER_ID_ENV_VAR,
    add_cwd_to_path,
    console,
    env_option,
    non_negative_float,
    open_queue,
    positive_float,
    positive_int,
    print_json,
    short_time,
    table,
)

WORKER_STATE_COLOURS = {"alive": "green", "dead": "red", "stopped": "bright_black"}


def add_allow_options(p: argparse.ArgumentParser) -> None:
    """What a worker may run: ``--allow-module`` (repeatable) and ``--allow-pickle``; the
    ``worker`` and ``mcp`` commands take them alike."""
    p.add_argument("--allow-module", action="append", metavar="MODULE", dest="allowed_modules",
                   help="run only functions of this module or its submodules; repeatable "
                        "(default: any importable function)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="run jobs whose payload is pickled, and steps another process "
                        "shipped by value (a notebook's cells, closures); only for database "
                        "files you trust")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("worker", help="run jobs until stopped (Ctrl-C or SIGTERM let "
                                           "running jobs finish)")
    p.add_argument("--worker-id", metavar="ID",
                   help=f"id recorded on the jobs it runs (default: ${WORKER_ID_ENV_VAR} if "
                        "set, else generated)")
    p.add_argument("--polling-interval", type=positive_float, metavar="SECONDS",
                   help="longest idle sleep in seconds; new work wakes it sooner "
                        f"(default: ${POLLING_INTERVAL_ENV_VAR} if set, else "
                        f"{DEFAULT_POLLING_INTERVAL:g})")
    p.add_argument("--concurrency", type=positive_int, metavar="N", default=1,
                   help="threads claiming and running jobs (default: 1)")
    p.add_argument("--executor", choices=EXECUTORS, default="threads",
                   help="where steps run: on the worker's threads, or each in a child process "
                        "of its thread (CPU-bound steps in parallel; timeouts and cancels "
                        "stop the work; a crash fails one attempt). Default: threads")
    p.add_argument("--once", action="store_true", help="run at most one ready job, then exit")
    p.add_argument("--lease-timeout", type=positive_float, metavar="SECONDS",
                   default=DEFAULT_LEASE_TIMEOUT,
                   help="seconds after which other workers reclaim the jobs of a worker that "
                        f"died (renewed while alive; default: {DEFAULT_LEASE_TIMEOUT:g})")
    p.add_argument("--grace-period", type=non_negative_float, metavar="SECONDS",
                   default=DEFAULT_GRACE_PERIOD,
                   help="on SIGINT/SIGTERM, seconds running jobs get to finish before they "
                        f"go back to the queue (default: {DEFAULT_GRACE_PERIOD:g})")
    add_allow_options(p)
    p.set_defaults(handler=cmd_worker, log_level="INFO")

    p = commands.add_parser("workers", help="list worker processes: alive, presumed dead "
                                            "(no heartbeat for a lease period) or stopped")
    p.add_argument("--json", action="store_true", help="print the workers as a JSON list")
    p.set_defaults(handler=cmd_workers)


def worker_options(args: argparse.Namespace) -> tuple[str | None, float]:
    """The worker id and polling interval: the flag, else GigQ's variable, else the
    default (a generated id, 5 s)."""
    worker_id = args.worker_id
    if worker_id is None:
        worker_id = env_option(WORKER_ID_ENV_VAR, str, "--worker-id")
    interval = args.polling_interval
    if interval is None:
        interval = env_option(POLLING_INTERVAL_ENV_VAR, positive_float, "--polling-interval")
    return worker_id, DEFAULT_POLLING_INTERVAL if interval is None else interval


def cmd_worker(args: argparse.Namespace) -> int:
    worker_id, polling_interval = worker_options(args)
    add_cwd_to_path()
    open_queue(args, create=True)  # a bad file is reported before any thread starts
    worker = Worker(args.db, worker_id=worker_id, polling_interval=polling_interval,
                    concurrency=args.concurrency, lease_timeout=args.lease_timeout,
                    grace_period=args.grace_period, allowed_modules=args.allowed_modules,
                    allow_pickle=args.allow_pickle, executor=args.executor)
    if args.once:
        try:
            ran = worker.process_one()
        finally:
            worker.close()
        print("Processed one job." if ran else "No jobs available to process.")
        return 0
    print(f"Starting worker {worker.worker_id}...", flush=True)
    worker.start()
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    workers = open_queue(args).list_workers()
    if args.json:
        print_json(workers)
        return 0
    rows = table("Worker", "State", "Host", "PID", "Threads", "Running jobs", "Started",
                 "Last heartbeat")
    for worker in workers:
        rows.add_row(
            worker["id"], Text(worker["state"], style=WORKER_STATE_COLOURS[worker["state"]]),
            worker["host"], str(worker["pid"]), str(worker["concurrency"]),
            str(worker["running_jobs"]), short_time(worker["started_at"]),
            short_time(worker["last_heartbeat"]),
        )
    console().print(rows)
    return 0
