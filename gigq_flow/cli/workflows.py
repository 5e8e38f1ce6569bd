"""Workflow commands: ``workflows``, ``workflow status ID [--wait]``, ``workflow graph ID -o FILE``.

``workflow status`` and ``workflow graph`` read :meth:`WorkflowRun.snapshot`, the one
status snapshot that the picture and the notebook panel read too; ``workflows`` reads
the per-workflow counts of :meth:`JobQueue.list_workflows` (one query for all of them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from rich.text import Text

from ..run import WorkflowRun
from ..snapshot import RunSnapshot
from ..viz.styles import DEFAULT_RANKDIR, RANKDIRS
from .common import (
    PROG,
    UsageError,
    console,
    open_queue,
    positive_float,
    print_json,
    short_time,
    status_text,
    table,
)
from .records import workflow_results

POLL_MIN_SECONDS = 0.1
POLL_MAX_SECONDS = 2.0
POLL_COST_FACTOR = 5
"""While waiting, sleep this many times what the last snapshot took (big runs poll less)."""
ERROR_WIDTH = 120


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("workflows", help="list submitted workflows with their progress")
    p.add_argument("--json", action="store_true", help="print the workflows as a JSON list")
    p.set_defaults(handler=cmd_workflows)

    p = commands.add_parser("workflow", help="inspect one workflow (status, graph)")
    actions = p.add_subparsers(dest="action", metavar="{status,graph}", required=True)

    s = actions.add_parser("status", help="every job of the workflow; --wait follows it to "
                                          "the end (exit 0 if all completed, else 1)")
    s.add_argument("workflow_id")
    s.add_argument("--wait", action="store_true",
                   help="show a live progress bar until every job has finished; exit 0 when "
                        "all completed, 1 when any failed, timed out, was cancelled or "
                        "upstream_failed")
    s.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                   help="with --wait, stop waiting after this many seconds (exit 1 if the "
                        "workflow has not finished by then)")
    s.add_argument("--json", action="store_true", help="print the status as a JSON object")
    s.set_defaults(handler=cmd_workflow_status)

    g = actions.add_parser("graph", help="draw the workflow's DAG, coloured by status")
    g.add_argument("workflow_id")
    g.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="picture file; the format comes from the extension: .svg, .png, "
                        ".pdf (or .dot/.gv for DOT source, .mmd for Mermaid)")
    g.add_argument("--rankdir", choices=RANKDIRS, default=DEFAULT_RANKDIR,
                   help=f"layout direction: top to bottom, left to right, ... "
                        f"(default: {DEFAULT_RANKDIR})")
    g.add_argument("--legend", action="store_true", help="add a legend of the status colours")
    g.set_defaults(handler=cmd_workflow_graph)


# -- workflows ------------------------------------------------------------------------------
def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in counts.items() if count)


def state_of(counts: dict[str, int]) -> str:
    """One word for a workflow: running, pending, succeeded or failed."""
    if counts.get("running"):
        return "running"
    if counts.get("pending"):
        return "pending"
    if sum(counts.values()) == counts.get("completed", 0):
        return "succeeded"
    return "failed"


def summarize(workflow: dict[str, Any]) -> dict[str, Any]:
    """A ``list_workflows`` entry with ``finished``, ``done`` and ``state`` added."""
    counts = workflow["counts"]
    workflow["finished"] = workflow["total"] - counts["pending"] - counts["running"]
    workflow["done"] = workflow["finished"] == workflow["total"]
    workflow["state"] = state_of(counts)
    return workflow


def cmd_workflows(args: argparse.Namespace) -> int:
    workflows = [summarize(workflow) for workflow in open_queue(args).list_workflows()]
    if args.json:
        print_json(workflows)
        return 0
    if not workflows:
        print("No workflows.")
        return 0
    rows = table("ID", "Name", "Created", "State", "Progress", "Jobs")
    for workflow in workflows:
        rows.add_row(workflow["id"], workflow["name"], short_time(workflow["created_at"]),
                     _state_text(workflow["state"]),
                     f"{workflow['finished']}/{workflow['total']}",
                     describe_counts(workflow["counts"]))
    console().print(rows)
    return 0


def _state_text(state: str) -> Text:
    return status_text({"succeeded": "completed"}.get(state, state), label=state)


# -- workflow status ------------------------------------------------------------------------
def load_run(args: argparse.Namespace) -> WorkflowRun:
    return open_queue(args).get_workflow(args.workflow_id)


def follow(run: WorkflowRun, *, show: bool, timeout: float | None = None) -> RunSnapshot:
    """Poll snapshots until every job is terminal (or ``timeout`` seconds pass), drawing a
    tqdm bar on stderr."""
    from tqdm import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    snapshot = run.snapshot()
    with tqdm(total=snapshot.total, desc=run.name, unit="job", disable=not show,
              file=sys.stderr, dynamic_ncols=True) as bar:
        shown = None
        while True:
            state = (snapshot.finished, describe_counts(snapshot.counts))
            if state != shown:  # redraw on change only: logs of piped stderr stay short
                bar.n = state[0]
                bar.set_postfix_str(state[1], refresh=False)
                bar.refresh()
                shown = state
            if snapshot.done or (deadline is not None and time.monotonic() >= deadline):
                return snapshot
            started = time.monotonic()
            snapshot = run.snapshot()
            cost = time.monotonic() - started
            pause = min(POLL_MAX_SECONDS, max(POLL_MIN_SECONDS, cost * POLL_COST_FACTOR))
            if deadline is not None:
                pause = max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(pause)


def snapshot_json(run: WorkflowRun, snapshot: RunSnapshot, *,
                  results: bool = True) -> dict[str, Any]:
    """The status as ``workflow status --json`` prints it (``results`` too, unless
    ``results=False``)."""
    status = {
        "id": snapshot.workflow_id,
        "name": snapshot.name,
        "created_at": run.created_at,
        "state": state_of(snapshot.counts),
        "counts": snapshot.counts,
        "total": snapshot.total,
        "finished": snapshot.finished,
        "done": snapshot.done,
        "succeeded": snapshot.succeeded,
        "jobs": [
            {"id": job.id, "name": job.name, "function": job.function,
             "status": job.status.value, "attempts": job.attempts,
             "max_attempts": job.max_attempts, "started_at": job.started_at,
             "completed_at": job.completed_at, "duration": job.duration,
             "worker_id": job.worker_id, "error": job.error}
            for job in snapshot.jobs
        ],
        "edges": [list(edge) for edge in snapshot.edges],
    }
    if results:
        status["results"] = workflow_results(run)
    return status


def print_snapshot(snapshot: RunSnapshot) -> None:
    rows = table("Job", "ID", "Status", "Attempts", "Duration", "Worker", "Error",
                 title=snapshot.summary())
    for job in snapshot.jobs:
        duration = job.duration
        rows.add_row(job.name, job.id, status_text(job.status.value),
                     f"{job.attempts}/{job.max_attempts}",
                     "" if duration is None else f"{duration:.2f}s", job.worker_id or "",
                     _first_line(job.error))
    console().print(rows)


def _first_line(text: str | None) -> str:
    line = (text or "").strip().splitlines()[0] if text and text.strip() else ""
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"


def cmd_workflow_status(args: argparse.Namespace) -> int:
    run = load_run(args)
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout applies to --wait; add --wait")
    if args.wait:
        snapshot = follow(run, show=not args.json, timeout=args.timeout)
    else:
        snapshot = run.snapshot()
    if args.json:
        print_json(snapshot_json(run, snapshot))
    else:
        print_snapshot(snapshot)
    if args.wait and not snapshot.done:
        print(f"{PROG}: workflow {run.id} not finished within {args.timeout:g} s",
              file=sys.stderr)
    if args.wait and not snapshot.succeeded:
        return 1
    return 0


# -- workflow graph -------------------------------------------------------------------------
def check_picture_path(path: str) -> None:
    """Refuse a picture path whose format or directory cannot work, before any work."""
    from ..viz.render import format_from_path

    format_from_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {path}: directory {directory} does not exist")


def cmd_workflow_graph(args: argparse.Namespace) -> int:
    check_picture_path(args.output)
    run = load_run(args)
    run.visualize(rankdir=args.rankdir, legend=args.legend).save(args.output)
    print(f"Wrote {os.path.abspath(args.output)}")
    return 0

