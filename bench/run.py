"""Side-by-side queue benchmark: gigq_flow against gigq 0.5.1, huey's SqliteHuey and a
raw SQLite claim-and-complete loop (the floor), plus the workflow scenarios
(gigq_flow against gigq 0.5.1, in ``bench/harness/workflow_scenarios.py``), in one run.

    python bench/run.py [--jobs 3000] [--repeat 1] [--only SCENARIO ...] [--json PATH]
                        [--dag-steps 2000] [--dag-rounds 20] [--prefect-steps 200]
                        [--large-steps 100000]

Every measurement uses a fresh temporary directory; each queue figure is the best of
``--repeat`` runs, in jobs per second. Queue scenarios:

- single:     submit ``--jobs`` no-op jobs one by one, then drain them with one worker
              calling ``process_one`` (huey: ``dequeue`` then ``execute``) in this process.
- processes:  drain the same jobs with 1 and with 4 worker processes, each looping
              ``process_one`` until the queue is empty; wall time from the start to
              the last completion.
- queue-size: claim and complete 500 jobs while 10, then 100,000, lower-priority jobs wait.

Workflow scenarios: workflow-submit, wide-dag, fan-out and dependent-latency;
see ``bench/harness/workflow_scenarios.py``. A DAG in the kernel beside Dask and Prefect:
kernel-dag and kernel-dag-large (``--dag-steps``, ``--dag-rounds``, ``--prefect-steps``,
``--large-steps``);
see ``bench/harness/kernel_dag.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

from harness.kernel_dag import (
    DAG_ROUNDS,
    DEFAULT_DAG_STEPS,
    DEFAULT_LARGE_STEPS,
    DEFAULT_PREFECT_STEPS,
    check_steps,
    kernel_dag_lines,
    kernel_dag_verdicts,
    large_lines,
    large_verdicts,
    measure_kernel_dag,
    measure_large,
)
from harness.machine import describe, installed, summary
from harness.processes import drain_in_processes, in_processes
from harness.systems import SYSTEMS, System, drain, expect_unfinished
from harness.tempdirs import fresh
from harness.workflow_scenarios import (
    WORKFLOW_SCENARIOS,
    measure_workflows,
    workflow_table,
    workflow_verdicts,
)

import gigq_flow

DEFAULT_JOBS = 3000
DEFAULT_REPEAT = 1
PROCESS_COUNTS = (1, 4)
CLAIMED = 500
WAITING = (10, 100_000)

Rates = dict[str, float]
"""Jobs per second by measurement label."""

SUBMIT = "submit, one by one"
RUN_IN_PROCESS = "run, 1 worker in-process"


def while_waiting(count: int) -> str:
    return f"claim+complete, {count:,} waiting"


TARGETS = (
    # (what, (label, system) measured, (label, system) compared with, least ratio)
    ("1-worker run rate at least 5x gigq's",
     (RUN_IN_PROCESS, "gigq_flow"), (RUN_IN_PROCESS, "gigq"), 5.0),
    ("1-worker run rate at least half the raw loop's",
     (RUN_IN_PROCESS, "gigq_flow"), (RUN_IN_PROCESS, "raw sqlite"), 0.5),
    ("4 worker processes not slower than 1",
     (in_processes(4), "gigq_flow"), (in_processes(1), "gigq_flow"), 1.0),
    ("claim cost flat from 10 to 100,000 waiting (within 20%)",
     (while_waiting(100_000), "gigq_flow"), (while_waiting(10), "gigq_flow"), 0.8),
)


# -- scenarios ---------------------------------------------------------------------------
def single(system_class: type[System], jobs: int) -> Rates:
    """Submit one by one, then drain with process_one in this process."""
    with fresh(system_class) as (_, system):
        began = time.perf_counter()
        system.submit(jobs)
        submitted = time.perf_counter()
        drain(system)
        drained = time.perf_counter()
        expect_unfinished(system, 0)
    return {SUBMIT: jobs / (submitted - began), RUN_IN_PROCESS: jobs / (drained - submitted)}


def processes(system_class: type[System], jobs: int) -> Rates:
    """Drain with 1, then 4, worker processes."""
    rates = {}
    for count in PROCESS_COUNTS:
        with fresh(system_class) as (directory, system):
            system.submit(jobs)
            seconds = drain_in_processes(system_class.name, directory, count)
            expect_unfinished(system, 0)
        rates[in_processes(count)] = jobs / seconds
    return rates


def queue_size(system_class: type[System], jobs: int) -> Rates:
    """Claim and complete CLAIMED jobs ahead of a few, then many, waiting ones
    (fixed sizes: ``jobs`` is not used)."""
    rates = {}
    for waiting in WAITING:
        with fresh(system_class) as (_, system):
            system.add_waiting(waiting)
            system.submit(CLAIMED)
            began = time.perf_counter()
            for _ in range(CLAIMED):
                system.process_one()
            seconds = time.perf_counter() - began
            expect_unfinished(system, waiting)
        rates[while_waiting(waiting)] = CLAIMED / seconds
    return rates


SCENARIOS: dict[str, Callable[[type[System], int], Rates]] = {
    "single": single,
    "processes": processes,
    "queue-size": queue_size,
}
KERNEL_DAG_SCENARIOS = ("kernel-dag", "kernel-dag-large")


# -- running and reporting ---------------------------------------------------------------
def measure(scenarios: list[str], jobs: int, repeat: int) -> dict[str, Rates]:
    """Best rate of ``repeat`` runs, by measurement label then system."""
    best: dict[str, Rates] = {}
    for scenario in scenarios:
        for run in range(1, repeat + 1):
            for system_class in SYSTEMS.values():
                print(f"  {scenario}, run {run}/{repeat}: {system_class.name}", file=sys.stderr)
                for label, rate in SCENARIOS[scenario](system_class, jobs).items():
                    by_system = best.setdefault(label, {})
                    by_system[system_class.name] = max(rate, by_system.get(system_class.name, 0.0))
    return best


def machine() -> dict[str, str]:
    return describe({
        "sqlite": sqlite3.sqlite_version,
        "gigq": version("gigq"),
        "huey": version("huey"),
        "dask": installed("dask"),
        "distributed": installed("distributed"),
        "prefect": installed("prefect"),
        "gigq_flow": f"{version('gigq-flow')} from {os.path.dirname(gigq_flow.__file__)}",
    })


def table(results: dict[str, Rates]) -> str:
    """Rates by system, then "vs PEER": gigq_flow's rate divided by the peer's."""
    names = list(SYSTEMS)
    ours, peers = names[0], names[1:]
    label_width = max(len(label) for label in results)
    ratio_widths = {peer: max(len(f"vs {peer}"), 6) for peer in peers}
    lines = ["  ".join(
        [f"{'jobs/s':<{label_width}}"] + [f"{name:>10}" for name in names]
        + [f"{'vs ' + peer:>{width}}" for peer, width in ratio_widths.items()]
    )]
    for label, rates in results.items():
        lines.append("  ".join(
            [f"{label:<{label_width}}"] + [f"{rates[name]:>10,.0f}" for name in names]
            + [f"{rates[ours] / rates[peer]:>{width}.2f}" for peer, width in ratio_widths.items()]
        ))
    return "\n".join(lines)


def verdicts(results: dict[str, Rates]) -> list[str]:
    """One line per target whose figures were measured in this run."""
    lines = []
    for what, (label, system), (base_label, base_system), least in TARGETS:
        if label in results and base_label in results:
            ratio = results[label][system] / results[base_label][base_system]
            verdict = "met" if ratio >= least else "NOT met"
            lines.append(f"{what}: {ratio:.2f}x, {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"no-op jobs in the single and processes scenarios ({DEFAULT_JOBS})")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"runs per measurement; the best is kept ({DEFAULT_REPEAT}); "
                             "fan-out and dependent-latency take medians of fixed trials")
    every = [*SCENARIOS, *WORKFLOW_SCENARIOS, *KERNEL_DAG_SCENARIOS]
    parser.add_argument("--only", nargs="+", choices=every, metavar="SCENARIO",
                        help=f"run these scenarios: {', '.join(every)}")
    parser.add_argument("--dag-steps", type=int, default=DEFAULT_DAG_STEPS,
                        help=f"steps of the kernel-dag DAG ({DEFAULT_DAG_STEPS})")
    parser.add_argument("--dag-rounds", type=int, default=DAG_ROUNDS,
                        help="runs of the kernel-dag DAG for gigq_flow and dask.threaded.get, "
                             f"the systems taking turns (at least --repeat; {DAG_ROUNDS})")
    parser.add_argument("--prefect-steps", type=int, default=DEFAULT_PREFECT_STEPS,
                        help=f"steps of kernel-dag's DAG for Prefect ({DEFAULT_PREFECT_STEPS}; "
                             "0: leave Prefect out)")
    parser.add_argument("--large-steps", type=int, default=DEFAULT_LARGE_STEPS,
                        help=f"steps of the kernel-dag-large DAG ({DEFAULT_LARGE_STEPS})")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    if args.jobs < 1 or args.repeat < 1 or args.dag_rounds < 1:
        parser.error("--jobs, --repeat and --dag-rounds must be at least 1")
    for option in ("dag_steps", "prefect_steps", "large_steps"):
        steps = getattr(args, option)
        wrong = None if option == "prefect_steps" and steps == 0 else check_steps(
            steps, "--" + option.replace("_", "-"))
        if wrong:
            parser.error(wrong)

    chosen = args.only or [*SCENARIOS, *WORKFLOW_SCENARIOS, *KERNEL_DAG_SCENARIOS]
    about = machine()
    began = time.perf_counter()
    results = measure([s for s in SCENARIOS if s in chosen], args.jobs, args.repeat)
    workflows = measure_workflows([s for s in WORKFLOW_SCENARIOS if s in chosen], args.repeat)
    kernel_dag = (measure_kernel_dag(args.dag_steps, args.prefect_steps, args.repeat,
                                     max(args.repeat, args.dag_rounds))
                  if "kernel-dag" in chosen else None)
    large = measure_large(args.large_steps, args.repeat) if "kernel-dag-large" in chosen else None
    print(summary(about))
    print(f"--jobs {args.jobs}, best of {args.repeat}, {time.perf_counter() - began:.0f} s")
    if results:
        print("\n".join(["", table(results), "", *verdicts(results)]))
    if workflows:
        print("\n".join(["", workflow_table(workflows), "", *workflow_verdicts(workflows)]))
    if kernel_dag is not None:
        print("\n".join(["", *kernel_dag_lines(kernel_dag), "", *kernel_dag_verdicts(kernel_dag)]))
    if large is not None:
        print("\n".join(["", *large_lines(large), "", *large_verdicts(large)]))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": about, "jobs": args.jobs, "repeat": args.repeat,
                       "results": results, "workflows": workflows, "kernel_dag": kernel_dag,
                       "kernel_dag_large": large}, out, indent=2)


if __name__ == "__main__":
    main()
