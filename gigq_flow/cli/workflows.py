"""Workflow commands: ``workflows``, ``workflow status ID [--wait]``, ``workflow explain
ID``, ``workflow rerun ID [--no-cache | --recompute] [--wait]``, ``workflow graph ID -o
FILE``.

``workflow status`` and ``workflow graph`` read :meth:`WorkflowRun.snapshot`, the one
status snapshot that the picture and the notebook panel read too; ``workflows`` reads
the per-workflow counts of :meth:`JobQueue.list_workflows` (one query for all of them).
``workflow explain`` and ``workflow rerun`` call :meth:`WorkflowRun.explain` and
:meth:`WorkflowRun.rerun`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from rich.text import Text

from ..errors import WorkflowNotFoundError
from ..locations import describe_location
from ..run import WorkflowRun
from ..snapshot import JobState, RunSnapshot
from ..viz.grouping import GROUP_MAX_NODES
from ..viz.styles import DEFAULT_RANKDIR, RANKDIRS
from .common import (
    PROG,
    UsageError,
    console,
    open_queue,
    positive_float,
    positive_int,
    print_json,
    short_time,
    status_text,
    table,
    worker_command,
)
from .maps import grouped, map_fields, map_progress, maps_json
from .records import workflow_results

POLL_MIN_SECONDS = 0.1
POLL_MAX_SECONDS = 2.0
POLL_COST_FACTOR = 5
"""While waiting, sleep this many times what the last snapshot took (big runs poll less)."""
ERROR_WIDTH = 120
CACHED_LABEL = "completed · cached"
"""The Status of a completed job that reused an earlier run's result."""
CACHE_CHOICES: dict[str, bool | str] = {"use": True, "off": False, "recompute": "recompute"}


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("workflows", help="list submitted workflows with their progress")
    p.add_argument("--json", action="store_true", help="print the workflows as a JSON list")
    p.set_defaults(handler=cmd_workflows)

    p = commands.add_parser("workflow", help="inspect one workflow (status, explain, graph) "
                                             "or run it again (rerun)")
    actions = p.add_subparsers(dest="action", metavar="{status,explain,rerun,graph}",
                               required=True)

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
    s.add_argument("--items", action="store_true",
                   help="list every item of each map under it (by default a map's row counts "
                        "its items' statuses, and only the items that failed for good are "
                        "listed)")
    s.add_argument("--json", action="store_true",
                   help="print the status as a JSON object (every job, items included)")
    s.set_defaults(handler=cmd_workflow_status)

    e = actions.add_parser("explain", help="why each step ran or reused an earlier result")
    e.add_argument("workflow_id")
    e.add_argument("--json", action="store_true",
                   help="print step name -> reason as a JSON object")
    e.set_defaults(handler=cmd_workflow_explain)

    r = actions.add_parser("rerun", help="submit a new run of the workflow's steps; by "
                                         "default it reuses the results of steps whose "
                                         "code, params and parents did not change")
    r.add_argument("workflow_id")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--no-cache", dest="cache", action="store_const", const="off",
                      default="use", help="run every step, and neither read nor store "
                                          "earlier results")
    mode.add_argument("--recompute", dest="cache", action="store_const", const="recompute",
                      help="run every step and refresh the stored results")
    r.add_argument("--wait", action="store_true",
                   help="follow the new run as 'workflow status --wait' does (exit 0 when "
                        "every job completed, else 1)")
    r.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                   help="with --wait, stop waiting after this many seconds (exit 1 if the "
                        "run has not finished by then)")
    r.add_argument("--json", action="store_true",
                   help="print the new run as a JSON object (its status, with --wait)")
    r.set_defaults(handler=cmd_workflow_rerun)

    g = actions.add_parser("graph", help="draw the workflow's DAG, coloured by status")
    g.add_argument("workflow_id")
    g.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="picture file; the format comes from the extension: .svg, .png, "
                        ".pdf (or .dot/.gv for DOT source, .mmd for Mermaid)")
    g.add_argument("--rankdir", choices=RANKDIRS, default=DEFAULT_RANKDIR,
                   help=f"layout direction: top to bottom, left to right, ... "
                        f"(default: {DEFAULT_RANKDIR})")
    g.add_argument("--legend", action="store_true", help="add a legend of the status colours")
    g.add_argument("--max-nodes", type=positive_int, default=GROUP_MAX_NODES, metavar="N",
                   help="draw a large run in at most N nodes, its jobs grouped by shared "
                        f"name, numbered name, then function (default: {GROUP_MAX_NODES})")
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
    """The workflow ``args.workflow_id``; an unknown id is a usage error naming the fix."""
    queue = open_queue(args)
    try:
        return queue.get_workflow(args.workflow_id)
    except WorkflowNotFoundError:
        raise UsageError(f"no workflow with id {args.workflow_id!r} in "
                         f"{describe_location(queue.db_path)}; '{PROG} workflows' lists "
                         "them") from None


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
                bar.total = snapshot.total  # maps add their items as they expand
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
             "worker_id": job.worker_id, "error": job.error, "cached_from": job.cached_from,
             **map_fields(job)}
            for job in snapshot.jobs
        ],
        "maps": maps_json(snapshot),
        "edges": [list(edge) for edge in snapshot.edges],
        "cached": snapshot.cached,
    }
    if results:
        status["results"] = workflow_results(run)
    return status


def print_snapshot(snapshot: RunSnapshot, *, all_items: bool = False) -> None:
    """A row per job; a map's row notes its items' progress, its items (all of them with
    ``all_items``, else those that failed for good) indented under it."""
    rows = table("Job", "ID", "Status", "Attempts", "Duration", "Worker", "Error",
                 title=snapshot.summary())
    items = snapshot.items_of
    for job, is_item in grouped(snapshot, all_items=all_items):
        duration = job.duration
        label = job.name
        if is_item:
            label = f"  {job.name}"
        elif job.is_map:
            label = f"{job.name} ({map_progress(job, items.get(job.id, ()))})"
        rows.add_row(label, job.id, job_status_text(job),
                     f"{job.attempts}/{job.max_attempts}",
                     "" if duration is None else f"{duration:.2f}s", job.worker_id or "",
                     _first_line(job.error))
    console().print(rows)


def job_status_text(job: JobState) -> Text:
    """The job's status in its colour; ``completed · cached`` for a reused result."""
    return status_text(job.status.value, label=CACHED_LABEL if job.cached else None)


def _first_line(text: str | None) -> str:
    line = (text or "").strip().splitlines()[0] if text and text.strip() else ""
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"


def check_wait_options(args: argparse.Namespace) -> None:
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout applies to --wait; add --wait")


def cmd_workflow_status(args: argparse.Namespace) -> int:
    check_wait_options(args)
    run = load_run(args)
    return show_status(run, args)


def show_status(run: WorkflowRun, args: argparse.Namespace,
                extra: dict[str, Any] | None = None) -> int:
    """Print the run's status (followed to the end with ``--wait``) as ``workflow status``
    does; ``extra`` fields go into the JSON. Returns the exit status."""
    if args.wait:
        snapshot = follow(run, show=not args.json, timeout=args.timeout)
    else:
        snapshot = run.snapshot()
    if args.json:
        print_json({**snapshot_json(run, snapshot), **(extra or {})})
    else:
        print_snapshot(snapshot, all_items=getattr(args, "items", False))
    if args.wait and not snapshot.done:
        print(f"{PROG}: workflow {run.id} not finished within {args.timeout:g} s",
              file=sys.stderr)
    if args.wait and not snapshot.succeeded:
        return 1
    return 0


# -- workflow explain and rerun -------------------------------------------------------------
def cmd_workflow_explain(args: argparse.Namespace) -> int:
    run = load_run(args)
    reasons = run.explain()
    if args.json:
        print_json(reasons)
        return 0
    rows = table("Step", "Reason")
    for name, reason in reasons.items():
        for text in reason if isinstance(reason, list) else [reason]:
            rows.add_row(name, text)
    out = console()
    out.print(Text(f"workflow {run.name!r} ({run.id}): why each step ran or was reused",
                   style="bold"), soft_wrap=True)
    out.print(rows)
    return 0


def cmd_workflow_rerun(args: argparse.Namespace) -> int:
    check_wait_options(args)
    run = load_run(args)
    cache = CACHE_CHOICES[args.cache]
    new_run = run.rerun(cache=cache)
    command = worker_command(args.db)
    if not any(worker["state"] == "alive" for worker in new_run.queue.list_workers()):
        print(f"{PROG}: workflow {new_run.id} waits in the queue until a worker runs it; "
              f"start one with: {command}", file=sys.stderr)
    extra = {"rerun_of": run.id, "cache": cache, "worker_command_example": command}
    if args.wait:
        if not args.json:
            print(f"Workflow submitted: {new_run.id}", flush=True)
        return show_status(new_run, args, extra)
    if args.json:
        snapshot = new_run.snapshot()
        print_json({"id": new_run.id, "name": new_run.name, "total": snapshot.total, **extra})
    else:
        print(f"Workflow submitted: {new_run.id}")
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
    run.visualize(rankdir=args.rankdir, legend=args.legend, max_nodes=args.max_nodes
                  ).save(args.output)
    print(f"Wrote {os.path.abspath(args.output)}")
    return 0

