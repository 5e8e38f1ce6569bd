"""Steps on processes: CPU-bound steps in parallel, and what running a step on a process
costs beside Python's process pool and Dask.

    python bench/processes.py [--cpu-steps 4] [--cpu-seconds 1] [--steps 1000] [--workers 4]
                              [--repeat 3] [--start-runs 9] [--json PATH]

Every measurement runs in a fresh interpreter (this script, started again with
``--measure``) and is timed there with ``time.perf_counter``; a trial measures every
system once, in an order that turns from one trial to the next. The verdicts read the
medians of per-trial ratios.

- CPU-bound: ``--cpu-steps`` independent steps of ``harness.jobs.crunch``, a pure-Python
  loop whose length is calibrated once, at the start, to take ``--cpu-seconds``. One
  workflow holding them is run with ``Workflow.run(queue, workers=cores,
  executor="processes")`` and with ``executor="threads"``, cores being
  ``os.cpu_count()``; the same loop is also timed alone, called directly, and the steps
  by ``ProcessPoolExecutor(cores).map`` (for scale: what the machine gives any process
  pool at that moment; pool start included). A gigq_flow run is timed from opening a
  fresh SQLite queue and building the workflow to having every result
  (``run.results()``). Targets: the processes' run at most 1.2 x (steps / cores)
  x the step alone; the threads' run at least 1.6x the processes' run.
- No-op: ``--steps`` independent steps of ``harness.jobs.numbered`` (it returns its
  index), on ``--workers`` processes, end to end: gigq_flow as above with
  ``executor="processes"``; the same with the step defined in this script's
  ``__main__`` (shipped by value); gigq_flow on threads (for scale);
  ``concurrent.futures.ProcessPoolExecutor(workers).map`` (pool start and shutdown
  included; the default start method, chunksize 1); and Dask distributed's
  ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)`` with
  ``client.map`` and ``client.gather``, timed with and without the cluster's start (its
  close is timed apart, in no figure). gigq_flow's figure includes starting its child
  processes (they start on the first steps) and stopping them. Targets: gigq_flow within
  2x of the pool's time; at least as fast as Dask, both with their start-up. Dask is
  skipped, saying so, when ``dask[distributed]`` is not installed (``pip install -e
  ".[bench]"``).
- Child start-up (for reading the figures): wall time of ``python -c "import
  gigq_flow.step_process"`` (what a step's child process imports before its first step)
  against ``python -c pass``, median of ``--start-runs``.

Every run checks every result it got back. gigq_flow's bytecode is compiled at the start
(``compileall``, as installing a wheel does): with ``PYTHONDONTWRITEBYTECODE`` set and a
source checkout, every step's child process would compile the package from source
(about 200 ms), which the pool and Dask, imported from compiled site-packages, do not.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from harness.jobs import crunch, numbered
from harness.machine import describe, installed, summary
from harness.tempdirs import temporary_directory

# gigq_flow and Dask are imported where they are used: the pool's and Dask's spawned
# workers import this script again, and should not pay for what they never run.

DEFAULT_CPU_STEPS = 4
DEFAULT_CPU_SECONDS = 1.0
DEFAULT_STEPS = 1000
DEFAULT_WORKERS = 4
DEFAULT_REPEAT = 3
DEFAULT_START_RUNS = 9
CHILD_TIMEOUT = 900.0
IDEAL_LIMIT = 1.2
"""The processes' CPU-bound run over (steps / cores) x one step: at most this."""
THREADS_LIMIT = 1.6
"""The threads' CPU-bound run over the processes' run: at least this."""
POOL_LIMIT = 2.0
"""gigq_flow's no-op run over ProcessPoolExecutor's: at most this."""
DASK_LIMIT = 1.0
"""gigq_flow's no-op run over Dask's, both with their start-up: at most this."""

ALONE, CPU_PROCESSES, CPU_THREADS = "one step alone", "processes", "threads"
CPU_POOL = "ProcessPoolExecutor.map (for scale)"
PROCESSES, BY_VALUE, THREADS = ("gigq_flow, processes", "gigq_flow, processes, step in __main__",
                                "gigq_flow, threads (for scale)")
POOL, DASK = "ProcessPoolExecutor.map", "Dask LocalCluster"
DASK_STARTED, DASK_CLOSE = "Dask, cluster already started", "Dask, its close (not in any figure)"
DASK_MISSING = "dask[distributed] is not installed: pip install -e \".[bench]\""


def numbered_here(index: int) -> int:
    """``harness.jobs.numbered`` again, defined in ``__main__``: gigq_flow ships it by value."""
    return index


# -- one measurement, in a fresh interpreter ---------------------------------------------------
def gigq_flow_run(function: Callable, params: list[dict[str, Any]], workers: int,
                  executor: str) -> tuple[float, list[Any]]:
    """Seconds from opening a fresh queue and building the workflow to having every
    result, and the results in step order."""
    from gigq_flow import JobQueue, Workflow

    with temporary_directory() as directory:
        began = time.perf_counter()
        queue = JobQueue(os.path.join(directory, "queue.db"))
        workflow = Workflow("bench-processes")
        for index, one in enumerate(params):
            workflow.add_task(function, one, name=f"step-{index}")
        run = workflow.run(queue, workers=workers, executor=executor, progress=False)
        results = run.results()
        seconds = time.perf_counter() - began
        queue.close()
    return seconds, [results.get(f"step-{index}") for index in range(len(params))]


def pool_run(function: Callable, args: list[Any], workers: int) -> tuple[float, list[Any]]:
    from concurrent.futures import ProcessPoolExecutor

    began = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(function, args))
    return time.perf_counter() - began, results


def dask_run(steps: int, workers: int) -> tuple[dict[str, float], list[Any]]:
    from dask.distributed import Client, LocalCluster

    began = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    client.wait_for_workers(workers)
    started = time.perf_counter()
    results = client.gather(client.map(numbered, range(steps)))
    done = time.perf_counter()
    client.close()
    cluster.close()
    return {DASK: done - began, DASK_STARTED: done - started,
            DASK_CLOSE: time.perf_counter() - done}, list(results)


def measure(system: str, spec: dict[str, Any]) -> dict[str, float]:
    """Run ``system`` once in this process; its figures (seconds by label). Raises
    RuntimeError when a result is not what the step returns."""
    steps, workers = spec["steps"], spec["workers"]
    expected: list[Any] = list(range(steps))
    if system == ALONE:
        began = time.perf_counter()
        got = [crunch(spec["loops"])]
        figures = {ALONE: time.perf_counter() - began}
        expected = [spec["crunched"]]
    elif system in (CPU_PROCESSES, CPU_THREADS):
        seconds, got = gigq_flow_run(crunch, [{"loops": spec["loops"]}] * steps, workers,
                                     system)
        figures, expected = {system: seconds}, [spec["crunched"]] * steps
    elif system == CPU_POOL:
        seconds, got = pool_run(crunch, [spec["loops"]] * steps, workers)
        figures, expected = {system: seconds}, [spec["crunched"]] * steps
    elif system in (PROCESSES, BY_VALUE, THREADS):
        function = numbered_here if system == BY_VALUE else numbered
        seconds, got = gigq_flow_run(function, [{"index": i} for i in range(steps)], workers,
                                     "threads" if system == THREADS else "processes")
        figures = {system: seconds}
    elif system == POOL:
        seconds, got = pool_run(numbered, list(range(steps)), workers)
        figures = {POOL: seconds}
    elif system == DASK:
        figures, got = dask_run(steps, workers)
    else:
        raise ValueError(f"unknown system {system!r}")
    if got != expected:
        wrong = sum(a != b for a, b in zip(got, expected, strict=True))
        raise RuntimeError(f"{system}: {wrong} of {len(expected)} results are wrong")
    return figures


def in_fresh_process(system: str, spec: dict[str, Any]) -> dict[str, float]:
    """``measure(system, spec)`` in a new interpreter running this script."""
    with temporary_directory() as directory:
        answer = os.path.join(directory, "answer.json")
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--measure", system, json.dumps(spec),
             answer], capture_output=True, text=True, timeout=CHILD_TIMEOUT)
        if done.returncode != 0 or not os.path.exists(answer):
            raise RuntimeError(f"{system}: the measuring process exited with code "
                               f"{done.returncode}:\n{done.stderr[-3000:]}")
        with open(answer) as figures:
            return json.load(figures)


def measure_main(system: str, spec: str, answer: str) -> None:
    figures = measure(system, json.loads(spec))
    with open(answer, "w") as out:
        json.dump(figures, out)


# -- the parent's part -----------------------------------------------------------------------
def calibrate(seconds: float) -> int:
    """Loops of ``crunch`` that take about ``seconds`` in this process."""
    loops = 10_000
    while True:
        began = time.perf_counter()
        crunch(loops)
        took = time.perf_counter() - began
        if took >= min(seconds, 0.25):
            return max(1, round(loops * seconds / took))
        loops *= 2


def trials(systems: list[str], spec: dict[str, Any], repeat: int, what: str,
           log: Callable[[str], None]) -> dict[str, list[float]]:
    """``repeat`` trials of every system, each in a fresh process, the order turning."""
    figures: dict[str, list[float]] = {}
    for trial in range(repeat):
        turn = trial % len(systems)
        for system in systems[turn:] + systems[:turn]:
            log(f"  {what}: trial {trial + 1}/{repeat}, {system}")
            for label, seconds in in_fresh_process(system, spec).items():
                figures.setdefault(label, []).append(seconds)
    return figures


def child_start(runs: int) -> dict[str, float]:
    """Median wall seconds of ``python -c`` importing what a step's child imports, and
    of ``python -c pass``."""
    times: dict[str, list[float]] = {"import gigq_flow.step_process": [], "pass": []}
    for _ in range(runs):
        for code in times:
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times[code].append(time.perf_counter() - began)
    return {code: statistics.median(values) for code, values in times.items()}


def per_trial(figures: dict[str, list[float]], mine: str, theirs: str,
              scale: float = 1.0) -> list[float]:
    """Per trial: ``mine`` over ``scale`` x ``theirs``."""
    return [a / (scale * b) for a, b in zip(figures[mine], figures[theirs], strict=True)]


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}–{max(values):.3f}"


def table(rows: dict[str, list[float]], unit_steps: int | None) -> list[str]:
    head = f"  {'':<40}{'median s':>9}  {'range':<13}"
    lines = [head + (f"{'steps/s':>9}" if unit_steps else "")]
    for label, values in rows.items():
        median = statistics.median(values)
        line = f"  {label:<40}{median:>9.3f}  {spread(values):<13}"
        lines.append(line + (f"{unit_steps / median:>9,.0f}" if unit_steps else ""))
    return lines


def verdict(target: str, ratio: float, met: bool) -> str:
    return f"{target}: {ratio:.2f}x, {'met' if met else 'NOT met'}"


def cpu_report(steps: int, seconds: float, loops: int, cores: int,
               figures: dict[str, list[float]]) -> tuple[str, list[str]]:
    ideal = per_trial(figures, CPU_PROCESSES, ALONE, steps / cores)
    pool = per_trial(figures, CPU_POOL, ALONE, steps / cores)
    speedup = per_trial(figures, CPU_THREADS, CPU_PROCESSES)
    against_pool = per_trial(figures, CPU_PROCESSES, CPU_POOL)
    lines = [f"CPU-bound: {steps} steps of {seconds:g} s ({loops:,} loops of harness.jobs."
             f"crunch), {cores} workers (os.cpu_count()), median of {len(ideal)} trials, "
             "each run in a fresh process",
             *table({ALONE: figures[ALONE],
                     f"{CPU_PROCESSES}, Workflow.run(workers={cores})": figures[CPU_PROCESSES],
                     f"{CPU_THREADS}, Workflow.run(workers={cores})": figures[CPU_THREADS],
                     f"ProcessPoolExecutor({cores}).map (for scale)": figures[CPU_POOL]},
                    None),
             f"  processes / ((steps / cores) x one step), per trial: median "
             f"{statistics.median(ideal):.2f}x, range {min(ideal):.2f}–{max(ideal):.2f}; "
             f"the pool's: median {statistics.median(pool):.2f}x, range {min(pool):.2f}–"
             f"{max(pool):.2f}",
             f"  processes / the pool, per trial: median {statistics.median(against_pool):.2f}x, "
             f"range {min(against_pool):.2f}–{max(against_pool):.2f}",
             f"  threads / processes, per trial: median {statistics.median(speedup):.2f}x, "
             f"range {min(speedup):.2f}–{max(speedup):.2f}"]
    ratio, faster = statistics.median(ideal), statistics.median(speedup)
    return "\n".join(lines), [
        verdict(f"{steps} CPU-bound steps of {seconds:g} s on {cores} processes within "
                f"{IDEAL_LIMIT:g} x (steps / cores) x one step", ratio, ratio <= IDEAL_LIMIT),
        verdict(f"{steps} CPU-bound steps: processes at least {THREADS_LIMIT:g}x faster than "
                "threads", faster, faster >= THREADS_LIMIT)]


def noop_report(steps: int, workers: int, figures: dict[str, list[float]],
                dask_skipped: str | None) -> tuple[str, list[str]]:
    count = len(figures[PROCESSES])
    labels = {PROCESSES: PROCESSES, BY_VALUE: BY_VALUE, THREADS: THREADS,
              POOL: f"ProcessPoolExecutor({workers}).map", DASK: f"{DASK}, start included",
              DASK_STARTED: DASK_STARTED, DASK_CLOSE: DASK_CLOSE}
    lines = [f"no-op: {steps:,} independent steps on {workers} workers, end to end, median "
             f"of {count} trials, each run in a fresh process",
             *table({labels[key]: values for key, values in figures.items()}, steps)]
    by_value = per_trial(figures, BY_VALUE, PROCESSES)
    pool = per_trial(figures, PROCESSES, POOL)
    lines += [f"  step in __main__ / importable step, per trial: median "
              f"{statistics.median(by_value):.2f}x, range {min(by_value):.2f}–"
              f"{max(by_value):.2f}",
              f"  gigq_flow / pool, per trial: median {statistics.median(pool):.2f}x, range "
              f"{min(pool):.2f}–{max(pool):.2f}"]
    verdicts = [verdict(f"{steps:,} no-op steps on {workers} processes within "
                        f"{POOL_LIMIT:g}x of ProcessPoolExecutor({workers}).map (start "
                        "included for both)", statistics.median(pool),
                        statistics.median(pool) <= POOL_LIMIT)]
    if dask_skipped is None:
        dask = per_trial(figures, PROCESSES, DASK)
        started = per_trial(figures, PROCESSES, DASK_STARTED)
        lines.append(f"  gigq_flow / Dask, per trial: median {statistics.median(dask):.2f}x "
                     f"with the cluster's start, {statistics.median(started):.2f}x without "
                     "(gigq_flow's figure always includes starting its children)")
        verdicts.append(verdict(f"{steps:,} no-op steps on {workers} processes at least as "
                                f"fast as {DASK} (time / Dask's, start included for both)",
                                statistics.median(dask), statistics.median(dask) <= DASK_LIMIT))
    return "\n".join(lines), verdicts


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--measure":
        measure_main(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-steps", type=int, default=DEFAULT_CPU_STEPS,
                        help=f"CPU-bound steps ({DEFAULT_CPU_STEPS})")
    parser.add_argument("--cpu-seconds", type=float, default=DEFAULT_CPU_SECONDS,
                        help=f"seconds of one CPU-bound step ({DEFAULT_CPU_SECONDS:g})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"no-op steps ({DEFAULT_STEPS})")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"processes of the no-op runs ({DEFAULT_WORKERS})")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"trials of every system ({DEFAULT_REPEAT})")
    parser.add_argument("--start-runs", type=int, default=DEFAULT_START_RUNS,
                        help=f"runs of each child start-up command ({DEFAULT_START_RUNS})")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    if min(args.cpu_steps, args.steps, args.workers, args.repeat, args.start_runs) < 1 \
            or args.cpu_seconds <= 0:
        parser.error("--cpu-steps, --steps, --workers, --repeat and --start-runs must be at "
                     "least 1, --cpu-seconds above 0")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    import gigq_flow

    compileall.compile_dir(os.path.dirname(gigq_flow.__file__), quiet=1)
    about = describe({
        "gigq_flow": f"{version('gigq-flow')} from {os.path.dirname(gigq_flow.__file__)}",
        "distributed": installed("distributed"),
    })
    began = time.perf_counter()
    cores = os.cpu_count() or 1
    loops = calibrate(args.cpu_seconds)
    cpu_spec = {"steps": args.cpu_steps, "workers": cores, "loops": loops,
                "crunched": crunch(loops)}
    cpu = trials([ALONE, CPU_PROCESSES, CPU_THREADS, CPU_POOL], cpu_spec, args.repeat,
                 "CPU-bound", log)
    dask_skipped = None if importlib.util.find_spec("distributed") else DASK_MISSING
    systems = [PROCESSES, BY_VALUE, THREADS, POOL] + ([DASK] if dask_skipped is None else [])
    noop = trials(systems, {"steps": args.steps, "workers": args.workers}, args.repeat,
                  "no-op", log)
    log("  child start-up")
    start = child_start(args.start_runs)

    print(summary(about))
    print(f"--repeat {args.repeat}, {time.perf_counter() - began:.0f} s, load average at "
          f"the end {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    reports = [cpu_report(args.cpu_steps, args.cpu_seconds, loops, cores, cpu),
               noop_report(args.steps, args.workers, noop, dask_skipped)]
    for text, _ in reports:
        print(f"\n{text}")
    print(f"\nchild start-up, median of {args.start_runs}: "
          + ", ".join(f"python -c \"{code}\" {1000 * seconds:.0f} ms"
                      for code, seconds in start.items()))
    print()
    for _, verdicts in reports:
        print("\n".join(verdicts))
    if dask_skipped is not None:
        print(f"{DASK}: skipped ({dask_skipped})")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": about, "repeat": args.repeat,
                       "cpu": {**cpu_spec, "seconds": args.cpu_seconds, "trials": cpu},
                       "noop": {"steps": args.steps, "workers": args.workers, "trials": noop,
                                "dask": dask_skipped or "measured"},
                       "child start-up": start}, out, indent=2)


if __name__ == "__main__":
    main()
