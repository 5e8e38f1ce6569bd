"""Incremental runs: what a run with ``cache=True`` costs when nothing can be reused, and
how fast a re-run goes when everything can.

    python bench/cache.py [--sleep-steps 1000] [--sleep-ms 20] [--steps 10000] [--repeat 5]
                          [--workers 4] [--pg-steps 2000] [--url postgresql://...] [--json PATH]

Every run is ``Workflow.run(queue, workers=4, cache=..., progress=False)`` (``--workers``
threads) on a layered DAG (``bench/harness/layered.py``: 20 layers, each step after two
steps of the layer above, every step ``harness.jobs.numbered`` with its own index, so
that no two steps share a cache key), in a fresh interpreter (a spawned process: the
"new kernel" case) that builds the workflow and then runs it. A run's figure is the
wall time of ``Workflow.run``: validation, submit, the worker threads' work, the wait
for the last step and the threads' stop. Building the workflow is timed apart.

- sleeping DAG: ``--sleep-steps`` steps that sleep ``--sleep-ms`` each, run once with
  cache=False on a fresh SQLite file (for scale: one run, no target), once with
  cache=True on another, then re-run ``--repeat`` times with cache=True on that file,
  each time in a new process: every step is reused. Targets: a reused re-run
  (the median) under REUSED_BUDGET seconds; the first cached run at most 10% slower
  than the cache=False run (steps that do some work).
- no-op DAG: ``--steps`` steps that do nothing, in ``--repeat`` trials. A trial runs,
  back to back, cache=False on a fresh file, cache=True on another fresh file (nothing
  to reuse) and cache=True again on that second file (everything reused), in alternating
  order (the reused run always after the run it reuses). Ratios are per trial, against
  the trial's cache=False run; the verdicts read their medians. Targets: nothing reused
  at most 10% slower than cache=False; everything reused at least as fast as it.
- PostgreSQL: the no-op DAG's first two runs with ``--pg-steps`` steps, each on a fresh
  schema (dropped afterwards) of the server at ``--url``; skipped, saying why, when no
  server answers or ``--pg-steps`` is 0.

A run whose worker logs an error (a database error) ends its process at once, and the
benchmark with it; a failed PostgreSQL run is reported as such (exit status 1) after the
SQLite figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sqlite3
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from multiprocessing.connection import Connection
from typing import Any

from harness.layered import Shape, layered
from harness.machine import describe, summary
from harness.tempdirs import temporary_directory

import gigq_flow
from gigq_flow import JobQueue
from gigq_flow.locations import redact

DEFAULT_WORKERS = 4
DEFAULT_SLEEP_STEPS = 1000
DEFAULT_SLEEP_MS = 20.0
DEFAULT_STEPS = 10_000
DEFAULT_REPEAT = 5
DEFAULT_PG_STEPS = 2000
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
URL_ENV = "GIGQ_FLOW_BENCH_POSTGRES"
REUSED_BUDGET = 1.0
"""Seconds a fully reused re-run of the sleeping DAG may take."""
NO_REUSE_LIMIT = 1.10
"""cache=True with nothing to reuse, over cache=False: at most this."""
REUSED_LIMIT = 1.0
"""cache=True with everything reused, over cache=False: at most this."""
CHILD_TIMEOUT = 900.0

OFF, FIRST, REUSED = "cache=False", "cache=True, none reused", "cache=True, all reused"


@dataclass(frozen=True)
class Timed:
    """One run in a fresh process: seconds to build the workflow and to run it, and how
    many of its steps took an earlier result."""

    build: float
    run: float
    cached: int


# -- one run, in a fresh interpreter -------------------------------------------------------
class AbortOnError(logging.Handler):
    """Ends the run's process when gigq_flow logs an error (a worker thread's database
    error): the step it held would stay running until its timeout, so the run would
    hang instead of failing. The error goes to the parent first."""

    def __init__(self, answer: Connection) -> None:
        super().__init__(logging.ERROR)
        self.answer = answer
        self.once = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        self.once.acquire()  # never released: one report, then the process ends
        error = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error += f": {record.exc_info[1]}"
        self.answer.send(error)
        os._exit(3)


def run_in_child(location: str, shape: Shape, cache: bool, workers: int,
                 answer: Connection) -> None:
    """The spawned process: open the queue (not timed), build the workflow, run it; send
    back the figures, or the error."""
    logging.getLogger("gigq_flow").addHandler(AbortOnError(answer))
    try:
        queue = JobQueue(location)
        try:
            began = time.perf_counter()
            workflow = layered(shape)
            built = time.perf_counter()
            run = workflow.run(queue, workers=workers, cache=cache, progress=False)
            finished = time.perf_counter()
            snapshot = run.snapshot()
            if not snapshot.succeeded:
                raise RuntimeError(f"the run did not complete: {snapshot.summary()}")
        finally:
            queue.close()
    except Exception as exc:
        answer.send(f"{type(exc).__name__}: {exc}")
        raise
    answer.send(Timed(built - began, finished - built, snapshot.cached))


def in_fresh_process(location: str, shape: Shape, cache: bool, cached: int,
                     workers: int) -> Timed:
    """Run the shape on ``location`` in a new interpreter; check that ``cached`` steps
    took an earlier result."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=run_in_child, args=(location, shape, cache, workers,
                                                                 theirs))
    child.start()
    theirs.close()  # the child's end: a child that dies closes the pipe
    try:
        answer: Timed | str = (ours.recv() if ours.poll(CHILD_TIMEOUT) else
                               f"no answer within {CHILD_TIMEOUT:.0f} s")
    except EOFError:
        answer = "the process ended without an answer"
    finally:
        child.join(CHILD_TIMEOUT)
        if child.is_alive():
            child.kill()
            child.join()
    where = f"{shape.describe()}, cache={cache}, on {redact(location)}"
    if isinstance(answer, str) or child.exitcode != 0:
        raise RunFailed(f"{where}: {answer if isinstance(answer, str) else ''} "
                        f"(exit code {child.exitcode})")
    if answer.cached != cached:
        raise RunFailed(f"{where}: {answer.cached} of {shape.steps} steps reused, "
                        f"expected {cached}")
    return answer


class RunFailed(Exception):
    """A measured run failed or reused other than expected: its figures mean nothing."""


# -- scenarios ---------------------------------------------------------------------------
def sleeping(shape: Shape, repeat: int, workers: int,
             log: Callable[[str], None]) -> dict[str, Any]:
    """A run with cache=False (for scale), the first run with cache=True on another file,
    then ``repeat`` fully reused re-runs on that file."""
    with temporary_directory() as directory:
        log(f"  {shape.describe()}: cache=False")
        off = in_fresh_process(os.path.join(directory, "off.db"), shape, False, 0, workers)
        path = os.path.join(directory, "queue.db")
        log(f"  {shape.describe()}: first run")
        first = in_fresh_process(path, shape, True, 0, workers)
        reruns = []
        for attempt in range(1, repeat + 1):
            log(f"  {shape.describe()}: reused re-run {attempt}/{repeat}")
            reruns.append(in_fresh_process(path, shape, True, shape.steps, workers))
    return {"off": asdict(off), "first": asdict(first),
            "reruns": [asdict(timed) for timed in reruns]}


Locations = Callable[[], AbstractContextManager[Callable[[], str]]]
"""Opens a place for queues (a directory, a server) and yields a function that makes a
fresh queue location there."""


def overhead(locations: Locations, shape: Shape, repeat: int, reused: bool, workers: int,
             log: Callable[[str], None]) -> dict[str, list[dict[str, float]]]:
    """``repeat`` trials of cache=False, cache=True with nothing to reuse and (if
    ``reused``) the fully reused re-run, each on a fresh location from ``locations``."""
    trials: dict[str, list[dict[str, float]]] = {OFF: [], FIRST: []}
    if reused:
        trials[REUSED] = []
    for trial in range(repeat):
        order = ("off", "cached") if trial % 2 == 0 else ("cached", "off")
        with locations() as fresh_location:
            for which in order:
                log(f"  {shape.describe()}: trial {trial + 1}/{repeat}, {which}")
                location = fresh_location()
                if which == "off":
                    trials[OFF].append(asdict(in_fresh_process(location, shape, False, 0, workers)))
                    continue
                trials[FIRST].append(asdict(in_fresh_process(location, shape, True, 0, workers)))
                if reused:
                    trials[REUSED].append(
                        asdict(in_fresh_process(location, shape, True, shape.steps, workers)))
    return trials


@contextmanager
def sqlite_files() -> Iterator[Callable[[], str]]:
    """Fresh SQLite files in one temporary directory, removed at exit."""
    with temporary_directory() as directory:
        yield lambda: os.path.join(directory, f"{uuid.uuid4().hex[:12]}.db")


@contextmanager
def postgres_schemas(url: str) -> Iterator[Callable[[], str]]:
    """Fresh schemas on the server at ``url``, dropped at exit."""
    schemas: list[str] = []

    def fresh() -> str:
        schema = f"bench_cache_{uuid.uuid4().hex[:12]}"
        schemas.append(schema)
        return f"{url}{'&' if '?' in url else '?'}schema={schema}"

    try:
        yield fresh
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_unavailable(url: str) -> str | None:
    """Why the PostgreSQL measurement cannot run, or None when the server answers."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"no PostgreSQL server answers at {redact(url)} ({first_line})"
    return None


# -- reporting ---------------------------------------------------------------------------
def runs(trials: list[dict[str, float]]) -> list[float]:
    return [trial["run"] for trial in trials]


def ratios(trials: dict[str, list[dict[str, float]]], which: str) -> list[float]:
    """Per trial: the run's seconds over the same trial's cache=False run."""
    return [mine / off for mine, off in zip(runs(trials[which]), runs(trials[OFF]), strict=True)]


def threads(workers: int) -> str:
    return f"{workers} thread{'s' if workers > 1 else ''}"


def sleeping_report(shape: Shape, workers: int,
                    figures: dict[str, Any]) -> tuple[str, list[str]]:
    reruns = runs(figures["reruns"])
    median = statistics.median(reruns)
    off, first = figures["off"], figures["first"]
    lines = [
        f"{shape.describe()}, {threads(workers)}, each run in a fresh process",
        f"  {'':<34}{'build s':>9}{'run s':>9}",
        f"  {'run, cache=False':<34}{off['build']:>9.3f}{off['run']:>9.3f}",
        f"  {'first run, cache=True':<34}{first['build']:>9.3f}{first['run']:>9.3f}"
        f"   {first['run'] / off['run']:.3f}x the cache=False run",
        f"  {f're-run, all reused (median of {len(reruns)})':<34}"
        f"{statistics.median(t['build'] for t in figures['reruns']):>9.3f}{median:>9.3f}"
        f"   range {min(reruns):.3f}–{max(reruns):.3f}",
        f"  first run / reused re-run: {first['run'] / median:.1f}x",
    ]
    verdict = "met" if median < REUSED_BUDGET else "NOT met"
    no_reuse = first["run"] / off["run"]
    return "\n".join(lines), [
        f"{shape.describe()}: fully reused re-run in a fresh process under "
        f"{REUSED_BUDGET:g} s: {median:.3f} s, {verdict}",
        f"{shape.describe()}: cache=True with nothing reused at most 10% slower than "
        f"cache=False: {no_reuse:.3f}x, "
        f"{'met' if no_reuse <= NO_REUSE_LIMIT else 'NOT met'}"]


def overhead_report(title: str, shape: Shape, workers: int,
                    trials: dict[str, list[dict[str, float]]]) -> tuple[str, list[str]]:
    count = len(trials[OFF])
    lines = [f"{title}{shape.describe()}, {threads(workers)}, median of {count} trials, "
             "each run in a fresh process on a fresh queue",
             f"  {'':<26}{'run s':>8}  {'range':<13}{'µs/step':>9}{'/ cache=False':>15}"]
    for which, timed in trials.items():
        seconds = runs(timed)
        median = statistics.median(seconds)
        ratio = "1.00" if which == OFF else f"{statistics.median(ratios(trials, which)):.2f}"
        lines.append(f"  {which:<26}{median:>8.3f}  {f'{min(seconds):.3f}–{max(seconds):.3f}':<13}"
                     f"{1e6 * median / shape.steps:>9,.0f}{ratio:>15}")
    lines.append("  (µs/step: the run's wall time over its steps; the last column is the median "
                 "of the per-trial ratios)")
    verdicts = []
    no_reuse = statistics.median(ratios(trials, FIRST))
    verdicts.append(
        f"{title}{shape.describe()}: cache=True with nothing reused at most "
        f"{100 * (NO_REUSE_LIMIT - 1):.0f}% slower than cache=False: {no_reuse:.3f}x, "
        f"{'met' if no_reuse <= NO_REUSE_LIMIT else 'NOT met'}")
    if REUSED in trials:
        reused = statistics.median(ratios(trials, REUSED))
        verdicts.append(
            f"{title}{shape.describe()}: fully reused re-run at least as fast as running it "
            f"(cache=False): {reused:.3f}x the time, "
            f"{'met' if reused <= REUSED_LIMIT else 'NOT met'}")
    return "\n".join(lines), verdicts


def machine() -> dict[str, str]:
    return describe({
        "sqlite": sqlite3.sqlite_version,
        "gigq_flow": f"{version('gigq-flow')} from {os.path.dirname(gigq_flow.__file__)}",
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sleep-steps", type=int, default=DEFAULT_SLEEP_STEPS,
                        help=f"steps of the sleeping DAG ({DEFAULT_SLEEP_STEPS})")
    parser.add_argument("--sleep-ms", type=float, default=DEFAULT_SLEEP_MS,
                        help=f"milliseconds each of its steps sleeps ({DEFAULT_SLEEP_MS:g})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"steps of the no-op DAG ({DEFAULT_STEPS})")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"trials of the no-op DAG, and reused re-runs of the sleeping "
                             f"one; medians are reported ({DEFAULT_REPEAT})")
    parser.add_argument("--pg-steps", type=int, default=DEFAULT_PG_STEPS,
                        help=f"steps of the no-op DAG on PostgreSQL; 0 skips it "
                             f"({DEFAULT_PG_STEPS})")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"worker threads of every run ({DEFAULT_WORKERS})")
    parser.add_argument("--url", default=os.environ.get(URL_ENV, DEFAULT_URL),
                        help=f"the PostgreSQL database (default: ${URL_ENV}, else {DEFAULT_URL})")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    if min(args.sleep_steps, args.steps, args.repeat, args.workers) < 1 \
            or args.pg_steps < 0 or args.sleep_ms < 0:
        parser.error("--sleep-steps, --steps, --repeat and --workers must be at least 1, "
                     "--pg-steps and --sleep-ms at least 0")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    about = machine()
    began = time.perf_counter()
    sleep_shape = Shape(args.sleep_steps, args.sleep_ms / 1000)
    sleep_figures = sleeping(sleep_shape, args.repeat, args.workers, log)
    noop_shape = Shape(args.steps)
    noop_trials = overhead(sqlite_files, noop_shape, args.repeat, True, args.workers, log)
    pg_shape = Shape(args.pg_steps)
    skipped = "--pg-steps 0" if not args.pg_steps else postgres_unavailable(args.url)
    pg_trials, pg_failed = None, None
    if skipped is None:
        try:
            pg_trials = overhead(lambda: postgres_schemas(args.url), pg_shape, args.repeat,
                                 False, args.workers, log)
        except RunFailed as exc:
            pg_failed = str(exc)

    print(summary(about))
    print(f"--repeat {args.repeat}, {time.perf_counter() - began:.0f} s")
    reports = [sleeping_report(sleep_shape, args.workers, sleep_figures),
               overhead_report("", noop_shape, args.workers, noop_trials)]
    if pg_trials is not None:
        reports.append(overhead_report("PostgreSQL: ", pg_shape, args.workers, pg_trials))
    for table, _ in reports:
        print(f"\n{table}")
    print()
    for _, verdicts in reports:
        print("\n".join(verdicts))
    if skipped is not None:
        print(f"PostgreSQL: skipped ({skipped})")
    if pg_failed is not None:
        print(f"PostgreSQL: NOT measured, a run failed: {pg_failed}")
    if args.json:
        postgres = ({"steps": args.pg_steps, "trials": pg_trials} if pg_trials is not None
                    else {"skipped": skipped} if skipped is not None else {"failed": pg_failed})
        with open(args.json, "w") as out:
            json.dump({"machine": about, "repeat": args.repeat, "workers": args.workers,
                       "sleeping": {"steps": args.sleep_steps, "ms": args.sleep_ms,
                                    **sleep_figures},
                       "noop": {"steps": args.steps, "trials": noop_trials},
                       "postgres": postgres}, out, indent=2)
    if pg_failed is not None:
        sys.exit(1)

if __name__ == "__main__":
    main()
