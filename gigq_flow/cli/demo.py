"""``gigq-flow demo``: build the sample pipeline, run it, draw it, summarise it."""

from __future__ import annotations

import argparse
import os
import time

from .. import demo
from ..job_status import JobStatus
from ..locations import describe_location, is_postgres_url
from ..run import WorkflowRun
from ..snapshot import RunSnapshot
from .common import (
    PROG,
    console,
    open_queue,
    positive_int,
    status_text,
    table,
    to_json_text,
)
from .workflows import check_picture_path

DEMO_PICTURE = "gigq_flow_demo.svg"
DEMO_WORKERS = 4
DEMO_TIMEOUT_SECONDS = 120
RESULT_WIDTH = 70


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "demo", help="run a sample pipeline (fan-out, fan-in, a retried step) and draw it")
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"where to write the picture (default: {DEMO_PICTURE} next to the "
                        "queue file; .svg, .png or .pdf)")
    p.add_argument("--workers", type=positive_int, default=DEMO_WORKERS,
                   help=f"worker threads (default: {DEMO_WORKERS})")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    # The picture and the flaky step's marker go next to the file (or here, for a server).
    folder = os.getcwd() if is_postgres_url(args.db) else os.path.dirname(os.path.abspath(args.db))
    output = os.path.abspath(args.output or os.path.join(folder, DEMO_PICTURE))
    check_picture_path(output)
    queue = open_queue(args, create=True)
    workflow = demo.build_workflow(folder)
    started = time.perf_counter()
    run = workflow.run(queue, workers=args.workers, progress=True,
                       timeout=DEMO_TIMEOUT_SECONDS)
    elapsed = time.perf_counter() - started
    run.visualize().save(output)
    snapshot = print_summary(run, elapsed)
    out = console()
    out.print(f"\nPicture:  {output}")
    out.print(f"Queue:    {describe_location(args.db)}")
    out.print(f"Workflow: {run.id}")
    out.print(f"\nNext: {PROG} workflow status {run.id}   |   {PROG} workflows   |   "
              f"{PROG} list")
    return 0 if snapshot.succeeded else 1


def print_summary(run: WorkflowRun, elapsed: float) -> RunSnapshot:
    snapshot = run.snapshot()
    results = run.results()
    out = console()
    verdict = "finished" if snapshot.done else f"still running after {elapsed:.0f}s"
    out.print(f"\nDemo pipeline {verdict} in {elapsed:.1f}s: {snapshot.summary()}")
    rows = table("Step", "Status", "Attempts", "Duration", "Result or error")
    rows.columns[-1].no_wrap = True  # one line per step, cut to the terminal's width
    rows.columns[-1].overflow = "ellipsis"
    for job in snapshot.jobs:
        duration = job.duration
        if job.name in results:
            shown = to_json_text(results[job.name])
        else:
            shown = job.error or ""
        if len(shown) > RESULT_WIDTH:
            shown = shown[: RESULT_WIDTH - 1] + "…"
        rows.add_row(job.name, status_text(job.status.value), f"{job.attempts}/{job.max_attempts}",
                     "" if duration is None else f"{duration:.2f}s", shown)
    out.print(rows)
    answer = results.get("report")
    if isinstance(answer, dict):
        words = ", ".join(f"{word} ({count})" for word, count in answer["top_words"].items())
        out.print(f"Top words of {answer['documents']} documents: {words}")
    retried = [job.name for job in snapshot.jobs
               if job.attempts > 1 and job.status is JobStatus.COMPLETED]
    if retried:
        out.print(f"Retried: {', '.join(retried)} failed once and succeeded on a later attempt")
    return snapshot
