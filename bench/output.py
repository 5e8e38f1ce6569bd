"""Step output: what capturing a step's prints costs, on jobs that print nothing and on a
step that prints a lot.

    python bench/output.py [--jobs 3000] [--trials 20] [--lines 10000] [--width 60]
                           [--print-trials 9] [--json PATH]
    python bench/output.py --quick        # a tiny size, to check that it runs

- no-op drain: ``--jobs`` no-op jobs submitted (not timed), then drained by one worker
  calling ``process_one`` until it returns False, in this order in a fresh interpreter
  (a spawned process) on a fresh SQLite file: run.py's "run, 1 worker in-process". A
  trial drains twice, in alternating order: once with the capture as shipped, once with
  its per-job work neutralised in that process only (NEUTRALISED says what). The
  capture cannot be switched off in the product, so this is the comparison. Target: the
  median of the per-trial ratios (shipped time over neutralised time) at most 1.05.
- printing step: one job printing ``--lines`` lines of ``--width`` characters
  (``harness.jobs.print_lines``), run by ``Worker.process_one`` (claimed, captured,
  stored in ``attempt_output``, completed), against the same function called directly
  with ``sys.stdout`` redirected to ``open(os.devnull, "w")``, in this process, in
  alternating order, ``--print-trials`` times. Target: the median of the per-trial
  ratios (worker over direct) at most 2. Every worker run's stored output is read back
  (``JobQueue.get_logs``, not timed) and checked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import time
from importlib.metadata import version
from multiprocessing.connection import Connection
from typing import Any

from harness.jobs import noop, print_lines
from harness.machine import describe, summary
from harness.tempdirs import temporary_directory

import gigq_flow
import gigq_flow.step_process
import gigq_flow.worker
from gigq_flow import Job, JobQueue, Worker
from gigq_flow.output import Router

DEFAULT_JOBS = 3000
DEFAULT_TRIALS = 20
DEFAULT_LINES = 10_000
DEFAULT_WIDTH = 60
DEFAULT_PRINT_TRIALS = 9
QUICK = {"jobs": 40, "trials": 2, "lines": 100, "print_trials": 2}
NOOP_LIMIT = 1.05
"""Shipped over neutralised, on the no-op drain: at most this."""
PRINT_LIMIT = 2.0
"""A printing step run by a worker over the same prints to /dev/null: at most this."""
CHILD_TIMEOUT = 600.0

SHIPPED, NEUTRALISED = "capture as shipped", "capture neutralised"
NEUTRALISED_WHAT = (
    "gigq_flow.step_process.Capturing replaced by a context manager that does nothing, and "
    "gigq_flow.worker.Output by a stub whose take() returns \"\" (so the worker's store "
    "of the output returns before any SQL); left in place: the router on sys.stdout/"
    "sys.stderr and the log record factory (installed once per worker start), the "
    "worker's registration of the running step's output (a dict entry under its lock) "
    "and its call to store it at the step's end")


# -- the neutralised capture ---------------------------------------------------------------
class NoCapture:
    """Stands in for ``Capturing``: routes nothing."""

    __slots__ = ("output",)

    def __init__(self, output: Any) -> None:
        self.output = output

    def __enter__(self) -> Any:
        return self.output

    def __exit__(self, *exc: object) -> None:
        return None


class NoOutput:
    """Stands in for ``Output``: keeps nothing, has nothing to store."""

    storing = contextlib.nullcontext()

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit

    def write(self, text: str) -> int:
        return len(text)

    def take(self) -> str:
        return ""


def neutralise() -> None:
    """In this process only: the worker's per-job capture does nothing (NEUTRALISED_WHAT)."""
    gigq_flow.step_process.Capturing = NoCapture  # type: ignore[assignment, misc]
    gigq_flow.worker.Output = NoOutput  # type: ignore[assignment, misc]


# -- the no-op drain, in a fresh interpreter -----------------------------------------------
def drain_in_child(neutralised: bool, jobs: int, answer: Connection) -> None:
    """The spawned process: submit, then time the drain; send (wall s, CPU s) or an error."""
    try:
        if neutralised:
            neutralise()
        with temporary_directory() as directory:
            path = os.path.join(directory, "queue.db")
            queue = JobQueue(path)
            for i in range(jobs):
                queue.submit(Job(f"noop-{i}", noop))
            worker = Worker(path)
            cpu = time.process_time()
            began = time.perf_counter()
            while worker.process_one():
                pass
            seconds = time.perf_counter() - began
            cpu = time.process_time() - cpu
            stats = queue.stats()
            worker.close()
            queue.close()
        if stats["completed"] != jobs:
            raise RuntimeError(f"{stats['completed']} of {jobs} jobs completed")
        if not isinstance(sys.stdout, Router):
            raise RuntimeError("the worker did not route sys.stdout: nothing was measured")
        if (gigq_flow.step_process.Capturing is NoCapture) != neutralised:
            raise RuntimeError("the capture is not as this run says")
    except Exception as exc:
        answer.send(f"{type(exc).__name__}: {exc}")
        raise
    answer.send((seconds, cpu))


def drain_in_fresh_process(neutralised: bool, jobs: int) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=drain_in_child, args=(neutralised, jobs, theirs))
    child.start()
    theirs.close()
    try:
        answer: tuple[float, float] | str = (
            ours.recv() if ours.poll(CHILD_TIMEOUT) else f"no answer in {CHILD_TIMEOUT:.0f} s")
    except EOFError:
        answer = "the process ended without an answer"
    finally:
        child.join(CHILD_TIMEOUT)
        if child.is_alive():
            child.kill()
            child.join()
    if isinstance(answer, str) or child.exitcode != 0:
        raise RuntimeError(f"no-op drain, {NEUTRALISED if neutralised else SHIPPED}: "
                           f"{answer if isinstance(answer, str) else ''} "
                           f"(exit code {child.exitcode})")
    return answer


def noop_trials(jobs: int, trials: int, log: Any) -> dict[str, list[list[float]]]:
    """``trials`` pairs of drains, alternating which goes first: [wall s, CPU s] each."""
    figures: dict[str, list[list[float]]] = {SHIPPED: [], NEUTRALISED: []}
    for trial in range(trials):
        order = (False, True) if trial % 2 == 0 else (True, False)
        for neutralised in order:
            which = NEUTRALISED if neutralised else SHIPPED
            log(f"  no-op drain: trial {trial + 1}/{trials}, {which}")
            figures[which].append(list(drain_in_fresh_process(neutralised, jobs)))
    return figures


# -- the printing step, in this process ----------------------------------------------------
def print_trials(lines: int, width: int, trials: int, log: Any) -> dict[str, list[float]]:
    """``trials`` pairs: the step run by a worker, the function printing to /dev/null."""
    figures: dict[str, list[float]] = {"worker": [], "direct": []}
    expected = "".join(f"{i:>{width}}\n" for i in range(lines))
    with temporary_directory() as directory:
        path = os.path.join(directory, "queue.db")
        queue, worker = JobQueue(path), Worker(path)
        try:
            for trial in range(trials):
                order = ("worker", "direct") if trial % 2 == 0 else ("direct", "worker")
                for which in order:
                    log(f"  printing step: trial {trial + 1}/{trials}, {which}")
                    if which == "direct":
                        with open(os.devnull, "w") as devnull, \
                                contextlib.redirect_stdout(devnull):
                            began = time.perf_counter()
                            print_lines(lines, width)
                            figures["direct"].append(time.perf_counter() - began)
                        continue
                    job_id = queue.submit(Job(f"print-{trial}", print_lines,
                                              params={"lines": lines, "width": width}))
                    began = time.perf_counter()
                    if not worker.process_one():
                        raise RuntimeError("the worker found no job to run")
                    figures["worker"].append(time.perf_counter() - began)
                    if queue.get_status(job_id)["status"] != "completed":
                        raise RuntimeError(f"the printing job {job_id} did not complete")
                    if queue.get_logs(job_id) != expected:
                        raise RuntimeError(f"the printing job {job_id}: its stored output "
                                           "is not what it printed")
        finally:
            worker.close()
            queue.close()
    return figures


# -- reporting -----------------------------------------------------------------------------
def spread(values: list[float]) -> str:
    return f"{min(values):.3f}–{max(values):.3f}"


def noop_report(jobs: int, figures: dict[str, list[list[float]]]) -> tuple[str, str]:
    trials = len(figures[SHIPPED])
    ratios = [shipped[0] / neutral[0]
              for shipped, neutral in zip(figures[SHIPPED], figures[NEUTRALISED], strict=True)]
    cpu_ratios = [shipped[1] / neutral[1]
                  for shipped, neutral in zip(figures[SHIPPED], figures[NEUTRALISED], strict=True)]
    lines = [f"no-op drain: {jobs:,} no-op jobs, 1 worker in-process (process_one), "
             f"{trials} paired trials, each drain in a fresh process on a fresh queue",
             f"  {'':<22}{'drain s':>9}  {'range':<13}{'jobs/s':>8}{'CPU µs/job':>12}"]
    for which in (SHIPPED, NEUTRALISED):
        walls = [wall for wall, _ in figures[which]]
        median = statistics.median(walls)
        cpu = statistics.median(cpu for _, cpu in figures[which])
        lines.append(f"  {which:<22}{median:>9.3f}  {spread(walls):<13}{jobs / median:>8,.0f}"
                     f"{1e6 * cpu / jobs:>12.1f}")
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive")
    ratio = statistics.median(ratios)
    lines += [f"  shipped / neutralised, per trial: time median {ratio:.3f}x, quartiles "
              f"{quartiles[0]:.3f}–{quartiles[2]:.3f}, range {spread(ratios)}; CPU time "
              f"median {statistics.median(cpu_ratios):.3f}x",
              f"  neutralised: {NEUTRALISED_WHAT}"]
    verdict = (f"capturing costs the no-op hot path at most {100 * (NOOP_LIMIT - 1):.0f}% "
               f"(shipped / neutralised, median of {trials}): {ratio:.3f}x, "
               f"{'met' if ratio <= NOOP_LIMIT else 'NOT met'}")
    return "\n".join(lines), verdict


def print_report(lines_printed: int, width: int,
                 figures: dict[str, list[float]]) -> tuple[str, str]:
    trials = len(figures["worker"])
    ratios = [mine / direct for mine, direct in
              zip(figures["worker"], figures["direct"], strict=True)]
    lines = [f"printing step: {lines_printed:,} lines of {width} characters, {trials} paired "
             "trials in this process",
             f"  {'':<44}{'median ms':>10}  {'range ms':<15}{'µs/line':>8}"]
    for which, label in (("worker", "run by a Worker (captured, stored)"),
                         ("direct", "called directly, sys.stdout to /dev/null")):
        values = figures[which]
        median = statistics.median(values)
        lines.append(f"  {label:<44}{1e3 * median:>10.2f}  "
                     f"{f'{1e3 * min(values):.2f}–{1e3 * max(values):.2f}':<15}"
                     f"{1e6 * median / lines_printed:>8.2f}")
    ratio = statistics.median(ratios)
    lines.append(f"  worker / direct, per trial: median {ratio:.2f}x, range "
                 f"{min(ratios):.2f}–{max(ratios):.2f} (the worker's figure includes the "
                 "job's claim and completion)")
    verdict = (f"a step printing {lines_printed:,} lines at most {PRINT_LIMIT:g}x printing to "
               f"/dev/null (median of {trials}): {ratio:.2f}x, "
               f"{'met' if ratio <= PRINT_LIMIT else 'NOT met'}")
    return "\n".join(lines), verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"no-op jobs per drain ({DEFAULT_JOBS})")
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                        help=f"paired no-op drains ({DEFAULT_TRIALS})")
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES,
                        help=f"lines the printing step prints ({DEFAULT_LINES})")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH,
                        help=f"characters per line, newline apart ({DEFAULT_WIDTH})")
    parser.add_argument("--print-trials", type=int, default=DEFAULT_PRINT_TRIALS,
                        help=f"paired runs of the printing step ({DEFAULT_PRINT_TRIALS})")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny size (" + ", ".join(
                            f"--{key.replace('_', '-')} {value}"
                            for key, value in QUICK.items()) + "), to check that it runs")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if min(args.jobs, args.lines, args.width) < 1 or min(args.trials, args.print_trials) < 2:
        parser.error("--jobs, --lines and --width must be at least 1, --trials and "
                     "--print-trials at least 2")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    about = describe({
        "sqlite": sqlite3.sqlite_version,
        "gigq_flow": f"{version('gigq-flow')} from {os.path.dirname(gigq_flow.__file__)}",
    })
    began = time.perf_counter()
    noop = noop_trials(args.jobs, args.trials, log)
    printing = print_trials(args.lines, args.width, args.print_trials, log)
    reports = [noop_report(args.jobs, noop), print_report(args.lines, args.width, printing)]
    print(summary(about))
    print(f"{time.perf_counter() - began:.0f} s")
    for table, _ in reports:
        print(f"\n{table}")
    print()
    for _, verdict in reports:
        print(verdict)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": about, "neutralised": NEUTRALISED_WHAT,
                       "noop": {"jobs": args.jobs, "trials": noop},
                       "printing": {"lines": args.lines, "width": args.width,
                                    "trials": printing}}, out, indent=2)


if __name__ == "__main__":
    main()
