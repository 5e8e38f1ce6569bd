"""A DAG in the kernel, beside Dask (and Prefect): the kernel-dag scenarios of ``bench/run.py``.

- kernel-dag:       a layered DAG of ``--dag-steps`` no-op steps (default 2,000: 40 layers
                    of 50, step i of a layer after steps i and i+1 of the layer above,
                    wrapping), on 4 worker threads, end to end from building the graph to
                    holding every result: gigq_flow ``Workflow.run(queue, workers=4,
                    progress=False)`` on a fresh SQLite file then ``run.results()``, and
                    the same with ``workers=1``; Dask's ``dask.threaded.get`` on the raw
                    graph dict, ``dask.delayed`` with ``dask.compute(scheduler="threads",
                    num_workers=4)`` and, when installed, distributed's in-process
                    ``LocalCluster(n_workers=1, threads_per_worker=4)`` (its start apart);
                    Prefect 3 with ``ThreadPoolTaskRunner(max_workers=4)`` when installed,
                    on a smaller DAG (``--prefect-steps``, default 200), beside gigq_flow
                    on that DAG (its temporary server's start apart); 0 leaves it out.
                    workers=4 against workers=1 is judged by the median over the rounds
                    of the two runs' ratio (a round's runs are seconds apart).
- kernel-dag-large: ``--large-steps`` no-op steps (default 100,000: 2,000 layers of 50)
                    with ``Workflow.run(workers=2)``: steps/s end to end, the process's
                    peak RSS, then on the finished run ``run.visualize()`` (grouped by
                    default) and its SVG, opening ``run.widget()`` and one
                    ``panel.refresh()``.

Every run is in a fresh interpreter (``kernel_dag_systems``) that imports only the
system it runs; each timing is the best of several runs, the systems taking turns a run
each: ``--repeat`` runs, and ``--dag-rounds`` (default DAG_ROUNDS) for gigq_flow and
Dask's raw graph on the kernel-dag DAG (a run takes a fraction of a second, and a shared
machine's noise is as large as the differences measured); the large run's peak memory is
the highest of its runs.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import tempfile
from typing import Any

from .kernel_dag_systems import WIDTH, in_fresh_process

DEFAULT_DAG_STEPS = 2000
DEFAULT_PREFECT_STEPS = 200
DEFAULT_LARGE_STEPS = 100_000
LARGE_WORKERS = 2
DAG_ROUNDS = 20

GF4, GF1 = "gigq_flow Workflow.run(workers=4)", "gigq_flow Workflow.run(workers=1)"
DASK_GET = "dask.threaded.get(graph, keys, num_workers=4)"
DASK_DELAYED = "dask.delayed + dask.compute(threads, 4)"
DISTRIBUTED = "distributed LocalCluster(1 x 4 threads)"
DISTRIBUTED_START = "distributed: its cluster's start (apart)"
GF4_SMALL = "gigq_flow Workflow.run(workers=4), same DAG"
PREFECT = "Prefect 3 ThreadPoolTaskRunner(4)"
PREFECT_START = "Prefect: its temporary server's start (apart)"
DISTRIBUTED_MISSING = "dask[distributed] is not installed: pip install -e \".[bench]\""
PREFECT_MISSING = "prefect is not installed: pip install -e \".[bench]\""

Report = dict[str, Any]


def check_steps(steps: int, option: str) -> str | None:
    """Why ``steps`` is not a layered DAG's size, or None."""
    if steps < 2 * WIDTH or steps % WIDTH:
        return f"{option} must be a multiple of {WIDTH}, at least {2 * WIDTH} (got {steps})"
    return None


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


Contender = tuple[str, str, dict[str, Any], int]  # label, system, spec, runs


def measure_rounds(contenders: list[Contender]) -> dict[str, list[dict[str, float]]]:
    """Label -> the figures of each of its runs, each in a fresh process. The contenders
    take turns, a run each a round (while they have runs left): a machine whose load
    drifts weighs on all of them alike."""
    found: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in contenders}
    for trial in range(1, max(runs for *_, runs in contenders) + 1):
        for label, run, spec, runs in contenders:
            if trial <= runs:
                log(f"  kernel-dag, run {trial}/{runs}: {label}")
                found[label].append(in_fresh_process(run, spec))
    return found


def fastest(runs: list[dict[str, float]]) -> dict[str, float]:
    return min(runs, key=lambda figures: figures["seconds"])


def paired_ratios(ones: list[dict[str, float]], fours: list[dict[str, float]]) -> list[float]:
    """Round by round, workers=1's time over workers=4's (above 1: four threads faster)."""
    return [one["seconds"] / four["seconds"] for one, four in zip(ones, fours, strict=True)]


def measure_kernel_dag(steps: int, prefect_steps: int, repeat: int, rounds: int) -> Report:
    """Seconds by row (the "rows" of the report: the best of ``rounds`` for gigq_flow and
    Dask's raw graph, of ``repeat`` for the others), and the rows measured apart."""
    contenders: list[Contender] = [
        (label, run, {"steps": steps, "workers": workers}, runs)
        for label, run, workers, runs in ((GF4, "gigq_flow", 4, rounds),
                                          (GF1, "gigq_flow", 1, rounds),
                                          (DASK_GET, "dask.threaded.get", 4, rounds),
                                          (DASK_DELAYED, "dask.delayed", 4, repeat))]
    skipped = {}
    if importlib.util.find_spec("distributed"):
        contenders.append((DISTRIBUTED, "distributed", {"steps": steps}, repeat))
    else:
        skipped["distributed"] = DISTRIBUTED_MISSING
    found = measure_rounds(contenders)
    rows = {label: fastest(runs)["seconds"] for label, runs in found.items()}
    apart = ({DISTRIBUTED_START: fastest(found[DISTRIBUTED])["start"]}
             if DISTRIBUTED in found else {})
    pairs = paired_ratios(found[GF1], found[GF4])
    small: dict[str, float] = {}
    if prefect_steps == 0:
        skipped["prefect"] = "--prefect-steps 0"
    elif importlib.util.find_spec("prefect"):
        try:
            with tempfile.TemporaryDirectory(prefix="gigq-bench-prefect-") as home:
                pair = measure_rounds(
                    [(GF4_SMALL, "gigq_flow", {"steps": prefect_steps, "workers": 4}, repeat),
                     (PREFECT, "prefect", {"steps": prefect_steps, "home": home}, repeat)])
        except RuntimeError as exc:  # an optional peer that could not run: say why, go on
            skipped["prefect"] = f"failed: {str(exc).strip().splitlines()[-1]}"
        else:
            small = {label: fastest(runs)["seconds"] for label, runs in pair.items()}
            apart[PREFECT_START] = fastest(pair[PREFECT])["start"]
    else:
        skipped["prefect"] = PREFECT_MISSING
    return {"steps": steps, "rounds": rounds, "repeat": repeat, "rows": rows,
            "workers=1 over workers=4, each round": pairs, "prefect_steps": prefect_steps,
            "prefect_rows": small, "apart": apart, "skipped": skipped}


def measure_large(steps: int, repeat: int) -> Report:
    """The large run ``repeat`` times, each in a fresh process: each timing the best of
    the runs (a shared machine only ever adds time), the peak memory the highest, and
    every run's steps/s."""
    runs = []
    for trial in range(1, repeat + 1):
        log(f"  kernel-dag-large, run {trial}/{repeat}: gigq_flow, {steps:,} steps, "
            f"workers={LARGE_WORKERS}")
        runs.append(in_fresh_process("gigq_flow", {"steps": steps, "workers": LARGE_WORKERS,
                                                   "large": True}))
    figures = {name: min(run[name] for run in runs) for name in runs[0]}
    for name in ("peak RSS MB", "RSS before the build MB"):
        figures[name] = max(run[name] for run in runs)
    return {"steps": steps, "workers": LARGE_WORKERS, **figures,
            "steps/s": steps / figures["seconds"],
            "every run's steps/s": [steps / run["seconds"] for run in runs]}


# -- the report --------------------------------------------------------------------------
def shape(steps: int) -> str:
    return f"{steps:,} no-op steps ({steps // WIDTH:,} layers of {WIDTH})"


def rows_table(rows: dict[str, float], steps: int, ours: str) -> list[str]:
    """Seconds, steps/s and "vs it": ``ours``'s rate over the row's (above 1: ours faster)."""
    width = max(len(label) for label in rows)
    lines = [f"  {'':<{width}}  {'s':>8}  {'steps/s':>9}  {'vs it':>6}"]
    for label, seconds in rows.items():
        lines.append(f"  {label:<{width}}  {seconds:>8.3f}  {steps / seconds:>9,.0f}  "
                     f"{seconds / rows[ours]:>6.2f}")
    return lines


def kernel_dag_lines(report: Report) -> list[str]:
    steps = report["steps"]
    lines = [f"kernel-dag: {shape(steps)}, 4 worker threads, end to end (build to every "
             f"result), each run in a fresh process, the systems taking turns; the best of "
             f"{report['rounds']} run{'s' if report['rounds'] > 1 else ''} for gigq_flow and "
             f"dask.threaded.get, of {report['repeat']} for the others",
             *rows_table(report["rows"], steps, GF4)]
    if PREFECT in report["prefect_rows"]:
        lines += [f"Prefect on a smaller DAG, {shape(report['prefect_steps'])}:",
                  *rows_table(report["prefect_rows"], report["prefect_steps"], GF4_SMALL)]
    lines += [f"{label}: {seconds:.3f} s" for label, seconds in report["apart"].items()]
    lines.append("vs it: gigq_flow workers=4's rate over the row's (above 1: gigq_flow faster)")
    pairs = report["workers=1 over workers=4, each round"]
    lines.append(f"workers=4's rate over workers=1's, round by round: median "
                 f"{statistics.median(pairs):.2f}x (from {min(pairs):.2f} to {max(pairs):.2f}); "
                 f"best against best {report['rows'][GF1] / report['rows'][GF4]:.2f}x")
    lines += [f"{name}: skipped ({why})" for name, why in report["skipped"].items()]
    return lines


def large_lines(report: Report) -> list[str]:
    rates = ", ".join(f"{rate:,.0f}" for rate in report["every run's steps/s"])
    return [
        f"kernel-dag-large: {shape(report['steps'])}, Workflow.run(workers="
        f"{report['workers']}), each run in a fresh process",
        f"  end to end {report['seconds']:.2f} s, {report['steps/s']:,.0f} steps/s (every run: "
        f"{rates}); peak RSS "
        f"{report['peak RSS MB']:.0f} MB (before the build {report['RSS before the build MB']:.0f}"
        " MB)",
        f"  run.visualize() {report['visualize()']:.3f} s (its SVG "
        f"{report['visualize().svg()']:.3f} s); run.widget() {report['widget()']:.3f} s, "
        "then panel.refresh() "
        f"{1000 * report['panel.refresh()']:.1f} ms",
    ]


def verdict(target: str, figure: str, met: bool) -> str:
    return f"{target}: {figure}, {'met' if met else 'NOT met'}"


def kernel_dag_verdicts(report: Report) -> list[str]:
    rows, steps = report["rows"], f"{report['steps']:,}"
    ours = rows[GF4]
    versus_get, versus_delayed = ours / rows[DASK_GET], rows[DASK_DELAYED] / ours
    scaling = statistics.median(report["workers=1 over workers=4, each round"])
    return [
        verdict(f"{steps}-step DAG: gigq_flow workers=4 no slower than dask.threaded.get "
                "(time / Dask's)", f"{versus_get:.2f}x", versus_get <= 1.0),
        verdict(f"{steps}-step DAG: gigq_flow workers=4 at least 5x faster than dask.delayed",
                f"{versus_delayed:.2f}x", versus_delayed >= 5.0),
        verdict(f"{steps}-step DAG: gigq_flow workers=4 at least 0.95x the rate of workers=1 "
                "(median of the rounds)", f"{scaling:.2f}x", scaling >= 0.95),
    ]


def large_verdicts(report: Report) -> list[str]:
    steps = f"{report['steps']:,}"
    return [
        verdict(f"{steps} steps at >= 10,000 steps/s", f"{report['steps/s']:,.0f} steps/s",
                report["steps/s"] >= 10_000),
        verdict(f"{steps} steps: peak memory <= 150 MB", f"{report['peak RSS MB']:.0f} MB",
                report["peak RSS MB"] <= 150),
        verdict(f"{steps}-step run: visualize() < 1 s", f"{report['visualize()']:.3f} s",
                report["visualize()"] < 1.0),
        verdict(f"{steps}-step run: panel refresh < 100 ms",
                f"{1000 * report['panel.refresh()']:.1f} ms", report["panel.refresh()"] < 0.1),
    ]
