"""One run of the kernel-DAG scenarios (``kernel_dag``), each in a fresh interpreter.

The DAG: ``steps / WIDTH`` layers of WIDTH no-op steps, step i of a layer after steps i
and (i + 1) % WIDTH of the layer above. Every run is timed with ``time.perf_counter``
from building the graph to holding every result; the systems' modules are imported
before the clock starts. Each run checks that it got a result for every step.

gigq_flow's steps are ``jobs.noop`` named after their layer (``layer-7``: the default
picture groups a layer into one node), Dask's and Prefect's ``jobs.noop_after``, which
takes the parents' results as arguments, the way those libraries pass dependencies.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from .jobs import noop, noop_after
from .tempdirs import temporary_directory

WIDTH = 50
WORKERS = 4
CHILD_TIMEOUT = 1800.0
BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

Figures = dict[str, float]


def parents_of(layer: int, i: int) -> tuple[tuple[int, int], ...]:
    """The (layer, index) of step i's parents (none in the first layer)."""
    return () if layer == 0 else ((layer - 1, i), (layer - 1, (i + 1) % WIDTH))


def layers(steps: int) -> range:
    return range(steps // WIDTH)


def peak_rss_mb() -> float:
    """This process's peak resident memory: ``VmHWM``, which starts over at ``exec``
    (``ru_maxrss`` keeps the high-water mark of the process that started it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_count(what: str, got: int, steps: int) -> None:
    if got != steps:
        raise RuntimeError(f"{what}: {got} results for {steps} steps")


# -- gigq_flow ---------------------------------------------------------------------------
def gigq_flow_workflow(steps: int) -> Any:
    """The DAG as a gigq_flow ``Workflow``: ``jobs.noop`` steps named after their layer."""
    from gigq_flow import Workflow

    workflow = Workflow(f"kernel-dag-{steps}")
    jobs: dict[tuple[int, int], Any] = {}
    for layer in layers(steps):
        for i in range(WIDTH):
            jobs[layer, i] = workflow.add_task(
                noop, depends_on=[jobs[p] for p in parents_of(layer, i)] or None,
                name=f"layer-{layer}")
    return workflow


def gigq_flow_dag(spec: dict[str, Any]) -> Figures:
    """``Workflow.run(queue, workers=spec["workers"])`` on a fresh SQLite file, then
    ``run.results()``: the seconds, and the CPU time and voluntary context switches of the
    process meanwhile; with ``spec["large"]``, also the peak RSS, ``run.visualize()``,
    its SVG, opening ``run.widget()`` and one ``panel.refresh()``, each timed once."""
    from gigq_flow import JobQueue

    steps, workers = spec["steps"], spec["workers"]
    with temporary_directory() as directory:
        before = peak_rss_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        queue = JobQueue(os.path.join(directory, "queue.db"))
        run = gigq_flow_workflow(steps).run(queue, workers=workers, progress=False)
        results = run.results()
        seconds = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        check_count("gigq_flow", sum(len(values) for values in results.values()), steps)
        figures = {"seconds": seconds,
                   "CPU seconds": (after.ru_utime + after.ru_stime
                                   - usage.ru_utime - usage.ru_stime),
                   "voluntary context switches": after.ru_nvcsw - usage.ru_nvcsw}
        if spec.get("large"):
            figures["peak RSS MB"] = peak_rss_mb()
            figures["RSS before the build MB"] = before
            figures.update(pictures(run))
        queue.close()
    return figures


def pictures(run: Any) -> Figures:
    """Seconds of ``run.visualize()``, of its SVG, of opening the live panel and of one
    refresh of it (nothing has changed since it opened: the run is over)."""
    began = time.perf_counter()
    picture = run.visualize()
    drawn = time.perf_counter()
    picture.svg()
    rendered = time.perf_counter()
    panel = run.widget(autostart=False)
    opened = time.perf_counter()
    panel.refresh()
    refreshed = time.perf_counter()
    panel.close()
    return {"visualize()": drawn - began, "visualize().svg()": rendered - drawn,
            "widget()": opened - rendered, "panel.refresh()": refreshed - opened}


# -- Dask --------------------------------------------------------------------------------
def dask_get(spec: dict[str, Any]) -> Figures:
    """The raw task-graph dict, ``dask.threaded.get(graph, keys, num_workers=4)``."""
    import dask.threaded

    steps = spec["steps"]
    began = time.perf_counter()
    graph = {("step", layer, i): (noop_after, *(("step", *p) for p in parents_of(layer, i)))
             for layer in layers(steps) for i in range(WIDTH)}
    results = dask.threaded.get(graph, list(graph), num_workers=WORKERS)
    seconds = time.perf_counter() - began
    check_count("dask.threaded.get", len(results), steps)
    return {"seconds": seconds}


def delayed_dag(steps: int) -> list[Any]:
    from dask import delayed

    step = delayed(noop_after)
    made: dict[tuple[int, int], Any] = {}
    for layer in layers(steps):
        for i in range(WIDTH):
            made[layer, i] = step(*(made[p] for p in parents_of(layer, i)))
    return list(made.values())


def dask_delayed(spec: dict[str, Any]) -> Figures:
    """``dask.delayed`` steps, ``dask.compute(*steps, scheduler="threads", num_workers=4)``."""
    import dask

    steps = spec["steps"]
    began = time.perf_counter()
    results = dask.compute(*delayed_dag(steps), scheduler="threads", num_workers=WORKERS)
    seconds = time.perf_counter() - began
    check_count("dask.delayed", len(results), steps)
    return {"seconds": seconds}


def dask_distributed(spec: dict[str, Any]) -> Figures:
    """``LocalCluster(processes=False, n_workers=1, threads_per_worker=4)``, then the
    delayed steps by ``client.compute`` and ``client.gather``; the cluster's start and
    close are timed apart."""
    from dask.distributed import Client, LocalCluster

    steps = spec["steps"]
    began = time.perf_counter()
    cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=WORKERS,
                           dashboard_address=None)
    client = Client(cluster)
    client.wait_for_workers(1)
    started = time.perf_counter()
    results = client.gather(client.compute(delayed_dag(steps)))
    done = time.perf_counter()
    client.close()
    cluster.close()
    check_count("distributed", len(results), steps)
    return {"seconds": done - started, "start": started - began,
            "close": time.perf_counter() - done}


# -- Prefect -----------------------------------------------------------------------------
PREFECT_QUIET = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_SERVER_LEVEL": "CRITICAL",  # its shutdown at exit logs cancellations
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    # a fresh PREFECT_HOME: its server creates its database first, beyond the default 20 s
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
}


def prefect_dag(spec: dict[str, Any]) -> Figures:
    """Prefect 3: a flow with ``ThreadPoolTaskRunner(max_workers=4)`` submitting every
    step (its parents' futures as arguments), then every future's ``result()``. An empty
    flow runs first, untimed in the figure: it starts Prefect's temporary server (in
    ``spec["home"]``), timed apart."""
    os.environ.update(PREFECT_HOME=spec["home"], **PREFECT_QUIET)
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    steps = spec["steps"]
    step = task(noop_after)

    @flow
    def warm_up() -> None:
        """Nothing: the first flow run starts the temporary server."""

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
    def dag() -> list[Any]:
        made: dict[tuple[int, int], Any] = {}
        for layer in layers(steps):
            for i in range(WIDTH):
                made[layer, i] = step.submit(*(made[p] for p in parents_of(layer, i)))
        return [future.result() for future in made.values()]

    began = time.perf_counter()
    warm_up()
    started = time.perf_counter()
    results = dag()
    seconds = time.perf_counter() - started
    check_count("prefect", len(results), steps)
    return {"seconds": seconds, "start": started - began}


RUNS: dict[str, Callable[[dict[str, Any]], Figures]] = {
    "gigq_flow": gigq_flow_dag,
    "dask.threaded.get": dask_get,
    "dask.delayed": dask_delayed,
    "distributed": dask_distributed,
    "prefect": prefect_dag,
}


# -- the fresh process -------------------------------------------------------------------
FIGURES_MARK = "FIGURES "


def in_fresh_process(run: str, spec: dict[str, Any]) -> Figures:
    """``RUNS[run](spec)`` in a new interpreter that imports this module and the system it
    runs, nothing of the benchmark's other systems; its figures."""
    code = "from harness.kernel_dag_systems import child_main; child_main()"
    done = subprocess.run([sys.executable, "-c", code], cwd=BENCH_DIR, text=True,
                          input=json.dumps({"run": run, "spec": spec}), capture_output=True,
                          timeout=CHILD_TIMEOUT, check=False)
    marked = [line for line in done.stdout.splitlines() if line.startswith(FIGURES_MARK)]
    if done.returncode != 0 or not marked:
        raise RuntimeError(f"{run} in a fresh process (exit code {done.returncode}): "
                           f"{done.stderr[-3000:]}")
    return json.loads(marked[-1][len(FIGURES_MARK):])


def child_main() -> None:
    """Run the request on standard input; print its figures on a marked line."""
    request = json.loads(sys.stdin.read())
    print(FIGURES_MARK + json.dumps(RUNS[request["run"]](request["spec"])), flush=True)
