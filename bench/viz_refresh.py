"""Visualization costs: the live panel's refresh of a 500-job run once laid out, and the
time to render a 1,000-job workflow.

    python bench/viz_refresh.py [--jobs 500] [--render-jobs 1000] [--rounds 50] [--json PATH]

Panel: a run of ``--jobs`` no-op jobs (50 chains of 10, no grouping, so every job is a
node of the graph) is submitted to a fresh SQLite file and opened in ``RunPanel``
(background thread off; refreshes are called by hand and timed). Figures:

- layout:     building the panel (first read, Graphviz layout of every node, table).
- idle:       ``refresh()`` when nothing changed since the last one.
- changing:   ``refresh()`` after a worker completed ``--step`` more jobs (not timed),
              until every job is done: counts, progress, table rows and graph nodes of
              the changed jobs are redrawn.

Each figure gives median, p95 and max; refreshes during which Python ran a full garbage
collection of the whole process are counted, with the max of the others.

Render: a ``--render-jobs`` workflow (10 layers, each job depending on two of the layer
above, every job its own node) is submitted, then ``run.visualize().svg()`` and
``.pipe("png")`` are timed end to end (status read, DOT, Graphviz layout and render),
plus the default grouped picture. The issue's bars: refresh <= 50 ms, render "a few
seconds".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

from harness.jobs import noop
from harness.tempdirs import temporary_directory

from gigq_flow import JobQueue, Worker, Workflow
from gigq_flow.viz.render import choose_renderer
from gigq_flow.viz.widget import RunPanel

REFRESH_BUDGET_MS = 50.0


def chains(n: int, length: int = 10) -> Workflow:
    wf = Workflow(f"bench-{n}")
    for chain in range(n // length):
        previous = None
        for step in range(length):
            previous = wf.add_task(noop, name=f"c{chain}_s{step}",
                                   depends_on=[previous] if previous else None)
    return wf


def layered(n: int, width: int = 100) -> Workflow:
    wf = Workflow(f"layered-{n}")
    layer: list = []
    for depth in range(n // width):
        layer = [
            wf.add_task(noop, name=f"layer{depth}",
                        depends_on=[layer[i], layer[(i + 1) % width]] if layer else None)
            for i in range(width)
        ]
    return wf


class FullCollections:
    """Counts Python's full (generation 2) garbage collections: one can land inside any
    timed call and costs what the whole process heap costs, not what the call does."""

    def __init__(self) -> None:
        self.count = 0
        gc.callbacks.append(self._seen)

    def _seen(self, phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            self.count += 1

    def close(self) -> None:
        gc.callbacks.remove(self._seen)


def timed(call, collections: FullCollections) -> tuple[float, bool]:
    """Seconds ``call()`` took, and whether a full collection ran meanwhile."""
    before = collections.count
    start = time.perf_counter()
    call()
    return time.perf_counter() - start, collections.count != before


def stats(samples: list[tuple[float, bool]]) -> dict[str, float]:
    ordered = sorted(seconds for seconds, _ in samples)
    clean = sorted(seconds for seconds, collected in samples if not collected)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "max_without_full_gc_ms": round(clean[-1] * 1000, 2) if clean else None,
        "full_gc_refreshes": len(ordered) - len(clean),
        "n": len(ordered),
    }


def bench_panel(directory: str, jobs: int, rounds: int, step: int) -> dict:
    queue = JobQueue(os.path.join(directory, "panel.db"))
    run = chains(jobs).submit(queue)
    start = time.perf_counter()
    panel = RunPanel(run, autostart=False, group_threshold=None)
    layout = time.perf_counter() - start
    assert panel.graph_view.value.count('class="node ') == jobs, "graph not drawn"

    collections = FullCollections()
    idle = [timed(panel.refresh, collections) for _ in range(rounds)]

    worker = Worker(queue.db_path, worker_id="bench", polling_interval=0.05)
    changing = []
    while not panel.done:
        for _ in range(step):
            worker.process_one()
        changing.append(timed(panel.refresh, collections))
    assert panel.counts["completed"] == jobs
    collections.close()
    panel.close()
    return {"jobs": jobs, "layout_s": round(layout, 3), "idle": stats(idle),
            "changing": stats(changing), "changed_per_refresh": step}


def bench_render(directory: str, jobs: int) -> dict:
    queue = JobQueue(os.path.join(directory, "render.db"))
    run = layered(jobs).submit(queue)
    figures = {"jobs": jobs}
    for label, options, fmt in (("svg_s", {"group_threshold": None}, "svg"),
                                ("png_s", {"group_threshold": None}, "png"),
                                ("dot_only_s", {"group_threshold": None}, None),
                                ("grouped_svg_s", {}, "svg")):
        start = time.perf_counter()
        picture = run.visualize(**options)
        data = picture.pipe(fmt) if fmt else picture.source.encode()
        figures[label] = round(time.perf_counter() - start, 3)
        assert data
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--render-jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--step", type=int, default=10,
                        help="jobs completed between two timed refreshes")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    with temporary_directory() as directory:
        panel = bench_panel(directory, args.jobs, args.rounds, args.step)
        rendered = bench_render(directory, args.render_jobs)
    results = {"renderer": choose_renderer(), "python": sys.version.split()[0],
               "panel": panel, "render": rendered}
    print(f"renderer: {results['renderer']}")
    print(f"panel of a {panel['jobs']}-job run: layout {panel['layout_s']:.3f} s")
    for name in ("idle", "changing"):
        figures = panel[name]
        verdict = "ok" if figures["p95_ms"] <= REFRESH_BUDGET_MS else "OVER BUDGET"
        print(f"  refresh ({name:8s}): median {figures['median_ms']:.2f} ms, "
              f"p95 {figures['p95_ms']:.2f} ms, max {figures['max_ms']:.2f} ms "
              f"over {figures['n']} refreshes  [{verdict}: budget {REFRESH_BUDGET_MS:.0f} ms]")
        if figures["full_gc_refreshes"]:
            print(f"    {figures['full_gc_refreshes']} of them included a full garbage "
                  f"collection of the process; max of the others "
                  f"{figures['max_without_full_gc_ms']:.2f} ms")
    print(f"render of a {rendered['jobs']}-job workflow: svg {rendered['svg_s']:.2f} s, "
          f"png {rendered['png_s']:.2f} s, DOT only {rendered['dot_only_s']:.3f} s, "
          f"grouped svg {rendered['grouped_svg_s']:.2f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
