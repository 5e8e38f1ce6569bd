"""Workflow scenarios, gigq_flow beside gigq 0.5.1; run by ``bench/run.py``.

Every measurement uses a fresh temporary directory. Scenarios:

- workflow-submit: build a 10,000-job wide DAG (5,000 parents, child i after parent
                   4,999-i) with the system's own calls, then submit it (gigq_flow's
                   ``submit`` validates first). Seconds of each step, best of ``--repeat``.
- wide-dag:        the same shape with n parents and n children, submitted, then drained
                   by ``process_one`` in this process; jobs/s at each n (gigq_flow 500,
                   4,000 and 8,000; gigq 500 and 4,000, see ``GigqWorkflows``), each size
                   draining about as many jobs in all as the largest (n=500: 16 fresh
                   runs for gigq_flow, 8 for gigq), best of ``--repeat``; and each rate
                   over the rate at n=500.
- fan-out:         one 0.3 s parent, four 0.3 s children; right after the submit, one
                   worker with concurrency=4 and the default polling interval starts in
                   background threads. Makespan from the submit to the last
                   ``completed_at`` recorded, median of 3.
- dependent-latency: a parent and a child; a worker in another process (spawned once,
                   default polling interval) watches the file, idle, while this process
                   runs the parent with ``process_one`` and completes it at a random
                   moment within one of that worker's idle poll cycles. The child's
                   ``started_at`` minus the parent's ``completed_at``, from the queue's
                   records: median and worst of the trials (20 for gigq_flow, 6 for gigq,
                   whose trials cost up to 10 s each).

Times from the records are wall-clock ISO stamps written by the systems themselves
(both write ``datetime.now()``); the rest is timed with ``time.perf_counter``.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from .jobs import nap, noop
from .systems import drain, expect_unfinished
from .tempdirs import fresh, temporary_directory
from .workflow_systems import WORKFLOW_SYSTEMS, WorkflowSystem

SUBMIT_PARENTS = 5000
FAN_OUT_CHILDREN = 4
FAN_OUT_SECONDS = 0.3
FAN_OUT_IDEAL = 2 * FAN_OUT_SECONDS
FAN_OUT_TRIALS = 3
LATENCY_SETTLE = 0.1
"""Seconds between the remote worker's start and the earliest parent completion."""
WAIT_STEP = 0.005
WAIT_TIMEOUT = 60.0
RANDOM_SEED = 3

Figures = dict[str, float]
"""One system's figures by row label."""
Table = dict[str, dict[str, float | None]]
"""Figures by row label, then system (None: not measured)."""

BUILD = "10,000-job workflow: build"
SUBMIT = "10,000-job workflow: submit, validated"
FAN_OUT = "fan-out 1+4 x 0.3 s: makespan (ideal 0.6)"
LATENCY = "dependent start, other process: median"
LATENCY_WORST = "dependent start, other process: worst"


def wide_rate(n: int) -> str:
    return f"wide DAG n={n:,}: run, 1 worker"


def wide_ratio(n: int) -> str:
    return f"wide DAG: rate n={n:,} / n=500"


def unit(label: str) -> str:
    if label in (BUILD, SUBMIT, FAN_OUT):
        return "s"
    if label in (LATENCY, LATENCY_WORST):
        return "ms"
    return "x" if label.startswith("wide DAG:") else "jobs/s"


WORKFLOW_TARGETS = (
    # (what, row, system, passes)
    ("submit a 10,000-job workflow, validation included, well under a second (<= 0.5 s)",
     SUBMIT, "gigq_flow", lambda seconds: seconds <= 0.5),
    ("wide DAG rate at n=8,000 at least 0.8x the rate at n=500",
     wide_ratio(8000), "gigq_flow", lambda ratio: ratio >= 0.8),
    ("fan-out makespan within 30 ms of the ideal 0.6 s",
     FAN_OUT, "gigq_flow", lambda seconds: abs(seconds - FAN_OUT_IDEAL) <= 0.030),
    ("a dependent job in another process starts within 50 ms (median)",
     LATENCY, "gigq_flow", lambda ms: ms < 50),
)


# -- shapes and helpers ------------------------------------------------------------------
def wide(system: WorkflowSystem, n: int) -> Any:
    """n parents, then n children, child i depending on parent n-1-i."""
    workflow = system.new_workflow(f"wide-{n}")
    parents = [system.add(workflow, f"parent-{i}", noop) for i in range(n)]
    for i in range(n):
        system.add(workflow, f"child-{i}", noop, parents=[parents[n - 1 - i]])
    return workflow


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(WAIT_STEP)


def recorded(system: WorkflowSystem, job_id: str, which: int) -> datetime:
    stamp = system.times(job_id)[which]
    if stamp is None:
        raise RuntimeError(f"{system.name}: job {job_id} has no {('start', 'end')[which]} recorded")
    return stamp


# -- scenarios ---------------------------------------------------------------------------
def workflow_submit(system_class: type[WorkflowSystem], repeat: int) -> Figures:
    """Build, then submit, a 10,000-job wide DAG; the best of ``repeat`` of each step."""
    builds, submits = [], []
    for _ in range(repeat):
        with fresh(system_class) as (_, system):
            began = time.perf_counter()
            workflow = wide(system, SUBMIT_PARENTS)
            built = time.perf_counter()
            system.submit(workflow)
            submitted = time.perf_counter()
            expect_unfinished(system, 2 * SUBMIT_PARENTS)
        builds.append(built - began)
        submits.append(submitted - built)
    return {BUILD: min(builds), SUBMIT: min(submits)}


def wide_dag(system_class: type[WorkflowSystem], repeat: int) -> Figures:
    """Drain a wide DAG of 2n jobs at each of the system's sizes; best rate of ``repeat``.

    A smaller n is drained several times (fresh files each time), so that every size
    drains about as many jobs in all as the largest: a single 1,000-job drain lasts a
    tenth of a second, at the mercy of one scheduling hiccup.
    """
    largest = max(system_class.wide_sizes)
    rates: dict[int, float] = {}
    for _ in range(repeat):
        for n in system_class.wide_sizes:
            rate = drain_rate(system_class, n, rounds=max(1, largest // n))
            rates[n] = max(rate, rates.get(n, 0.0))
    base = system_class.wide_sizes[0]
    figures = {wide_rate(n): rate for n, rate in rates.items()}
    figures.update({wide_ratio(n): rates[n] / rates[base] for n in rates if n != base})
    return figures


def drain_rate(system_class: type[WorkflowSystem], n: int, rounds: int) -> float:
    """Jobs per second over ``rounds`` drains of a fresh wide DAG of 2n jobs."""
    seconds = 0.0
    for _ in range(rounds):
        with fresh(system_class) as (_, system):
            system.submit(wide(system, n))
            began = time.perf_counter()
            drain(system)
            seconds += time.perf_counter() - began
            expect_unfinished(system, 0)
    return rounds * 2 * n / seconds


def fan_out(system_class: type[WorkflowSystem], repeat: int) -> Figures:
    """Median makespan of FAN_OUT_TRIALS runs (``repeat`` is not used)."""
    makespans = []
    with ExitStack() as directories:
        winding_down: list[threading.Thread] = []
        for _ in range(FAN_OUT_TRIALS):
            directory = directories.enter_context(temporary_directory())
            with closing(system_class(directory)) as system:
                makespans.append(one_fan_out(system, winding_down))
        for thread in winding_down:  # before their directories go
            thread.join(WAIT_TIMEOUT)
    return {FAN_OUT: statistics.median(makespans)}


def one_fan_out(system: WorkflowSystem, winding_down: list[threading.Thread]) -> float:
    workflow = system.new_workflow("fan-out")
    parent = system.add(workflow, "parent", nap, {"seconds": FAN_OUT_SECONDS})
    jobs = [parent] + [
        system.add(workflow, f"child-{i}", nap, {"seconds": FAN_OUT_SECONDS}, parents=[parent])
        for i in range(FAN_OUT_CHILDREN)
    ]
    began = datetime.now()
    system.submit(workflow)
    worker = system.start_worker(system.path, concurrency=FAN_OUT_CHILDREN)
    try:
        wait_until(lambda: system.unfinished() == 0, f"{system.name}'s fan-out to complete")
    finally:
        thread = system.stop_worker(worker)
        if thread is not None:
            winding_down.append(thread)
    return max((recorded(system, job.id, 1) - began).total_seconds() for job in jobs)


GATE = threading.Event()
ENTERED = threading.Event()


def gate() -> None:
    """The parent job of the latency scenario: holds its worker until GATE opens."""
    ENTERED.set()
    if not GATE.wait(WAIT_TIMEOUT):
        raise RuntimeError("the latency scenario never opened the gate")


def dependent_latency(system_class: type[WorkflowSystem], repeat: int) -> Figures:
    """Median and worst of the system's latency trials, in ms (``repeat`` is not used)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    remote = context.Process(target=serve_workers, args=(system_class.name, theirs), daemon=True)
    remote.start()
    chance = random.Random(RANDOM_SEED)
    try:
        latencies = [
            one_latency(system_class, ours, chance) for _ in range(system_class.latency_trials)
        ]
    finally:
        ours.send(("exit", None))
        remote.join(WAIT_TIMEOUT)
    if remote.exitcode != 0:
        raise RuntimeError(f"{system_class.name}: the worker process exited with {remote.exitcode}")
    return {LATENCY: 1000 * statistics.median(latencies), LATENCY_WORST: 1000 * max(latencies)}


def one_latency(system_class: type[WorkflowSystem], remote: Connection,
                chance: random.Random) -> float:
    with fresh(system_class) as (_, system):
        workflow = system.new_workflow("latency")
        parent = system.add(workflow, "parent", gate)
        child = system.add(workflow, "child", noop, parents=[parent])
        system.submit(workflow)
        GATE.clear()
        ENTERED.clear()
        ran: list[bool] = []
        runner = threading.Thread(target=run_one, args=(system, ran))
        runner.start()  # claims the parent before the other process can look
        try:
            if not ENTERED.wait(WAIT_TIMEOUT):
                raise RuntimeError(f"{system.name}: the parent never started")
            ask(remote, "start", system.path)
            time.sleep(LATENCY_SETTLE + chance.uniform(0, system_class.idle_cycle))
        finally:
            GATE.set()
            runner.join()
        if ran != [True]:
            raise RuntimeError(f"{system.name}: this process did not run the parent")
        try:
            wait_until(lambda: system.unfinished() == 0, f"{system.name}'s child to complete")
        finally:
            ask(remote, "stop")
        return (recorded(system, child.id, 0) - recorded(system, parent.id, 1)).total_seconds()


def run_one(system: WorkflowSystem, ran: list[bool]) -> None:
    try:
        ran.append(system.process_one())
    finally:
        system.close()  # this thread's connections


def ask(remote: Connection, command: str, path: str | None = None) -> None:
    remote.send((command, path))
    if not remote.poll(WAIT_TIMEOUT) or remote.recv() != command:
        raise RuntimeError(f"the worker process did not answer {command!r}")


def serve_workers(name: str, commands: Connection) -> None:
    """The other process: start a worker on a path, stop it, exit, when told to."""
    system_class = WORKFLOW_SYSTEMS[name]
    worker = None
    winding_down = []
    while True:
        command, path = commands.recv()
        if command == "exit":
            break
        if command == "start":
            worker = system_class.start_worker(path)
        elif command == "stop":
            thread = system_class.stop_worker(worker)
            if thread is not None:
                winding_down.append(thread)
        commands.send(command)
    for thread in winding_down:
        thread.join(WAIT_TIMEOUT)


WORKFLOW_SCENARIOS: dict[str, Callable[[type[WorkflowSystem], int], Figures]] = {
    "workflow-submit": workflow_submit,
    "wide-dag": wide_dag,
    "fan-out": fan_out,
    "dependent-latency": dependent_latency,
}


# -- running and reporting ---------------------------------------------------------------
def measure_workflows(scenarios: list[str], repeat: int) -> Table:
    table: Table = {}
    for scenario in scenarios:
        for system_class in WORKFLOW_SYSTEMS.values():
            print(f"  {scenario}: {system_class.name}", file=sys.stderr)
            for label, figure in WORKFLOW_SCENARIOS[scenario](system_class, repeat).items():
                table.setdefault(label, {})[system_class.name] = figure
    for by_system in table.values():
        for name in WORKFLOW_SYSTEMS:
            by_system.setdefault(name, None)
    return table


def cell(value: float | None, unit_name: str) -> str:
    if value is None:
        return "-"
    if unit_name == "jobs/s":
        return f"{value:,.0f}"
    if unit_name == "ms":
        return f"{value:.1f}"
    return f"{value:.3f}" if unit_name == "s" else f"{value:.2f}"


def workflow_table(table: Table) -> str:
    """Figures by system, then "vs gigq": how many times better gigq_flow does (rates:
    ours / theirs; times: theirs / ours); blank for ratios of a system to itself."""
    names = list(WORKFLOW_SYSTEMS)
    ours, peers = names[0], names[1:]
    width = max(len(label) for label in table)
    lines = ["  ".join([f"{'workflows':<{width}}", f"{'unit':<6}"]
                       + [f"{name:>10}" for name in names]
                       + [f"{'vs ' + peer:>8}" for peer in peers])]
    for label, by_system in table.items():
        unit_name = unit(label)
        ratios = []
        for peer in peers:
            mine, theirs = by_system[ours], by_system[peer]
            if mine is None or theirs is None or unit_name == "x":
                ratios.append(f"{'':>8}")
            else:
                ratio = mine / theirs if unit_name == "jobs/s" else theirs / mine
                ratios.append(f"{ratio:>8.2f}")
        lines.append("  ".join([f"{label:<{width}}", f"{unit_name:<6}"]
                               + [f"{cell(by_system[name], unit_name):>10}" for name in names]
                               + ratios))
    if any(value is None for by_system in table.values() for value in by_system.values()):
        lines.append("- : not measured (gigq's larger wide DAGs take minutes: see "
                     "bench/harness/workflow_systems.py)")
    return "\n".join(lines)


def workflow_verdicts(table: Table) -> list[str]:
    """One line per workflow target whose figure was measured in this run."""
    lines = []
    for what, label, system, passes in WORKFLOW_TARGETS:
        value = table.get(label, {}).get(system)
        if value is not None:
            verdict = "met" if passes(value) else "NOT met"
            lines.append(f"{what}: {cell(value, unit(label))} {unit(label)}, {verdict}")
    return lines
