"""Maps and limits: what expanding a map costs, how fast its items drain, and what a
full limit costs the claim.

    python bench/maps.py [--items 10000] [--workers 4] [--repeat 3] [--json PATH]

Each measurement runs in a fresh interpreter (a spawned process) on a fresh SQLite file;
steps are ``harness.jobs.noop``-like functions of ``harness.jobs`` (no work).

- expand: a workflow ``numbers -> map(item_noop)`` whose parent returns ``--items``
  numbers; once the parent completed, one ``Worker.process_one()`` claims the map and
  expands it (reads the list, writes every item and its edge in one transaction).
  Against: ``JobQueue.submit_workflow`` of ``--items`` independent jobs of the same
  function (one transaction), the Job objects built beforehand. Target: the expansion
  costs no more than the submit (ratio at most 1.0).
- drain: the expanded items, run by a worker of ``--workers`` threads until the map is
  collected, against ``--items`` independent jobs submitted as one workflow, run the
  same way. Target: within 10% (ratio at most 1.10).
- claim with a full limit: one worker thread drains ``--items`` free jobs while
  ``--items`` jobs tagged ``held`` wait behind a limit of 1 that a running job fills
  (they were submitted first, so they lead by age); against the same free jobs in a
  queue without tags or limits. Target: the rate with the limit at least 0.8x.

Verdicts read the median of ``--repeat`` trials.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from harness.machine import describe, summary
from harness.tempdirs import temporary_directory

from gigq_flow import Job, JobQueue, Worker, Workflow

DEFAULT_ITEMS = 10_000
DEFAULT_WORKERS = 4
DEFAULT_REPEAT = 3
EXPAND_LIMIT = 1.0
DRAIN_LIMIT = 1.10
CLAIM_FLOOR = 0.8
TIMEOUT = 900.0


def expand_seconds(items: int, workers: int) -> float:
    from harness import jobs

    with temporary_directory() as directory:
        queue = JobQueue(f"{directory}/q.db")
        wf = Workflow("map")
        numbers = wf.add_task(jobs.numbers, params={"n": items})
        wf.map(jobs.item_noop, over=numbers)
        wf.submit(queue)
        worker = Worker(queue)
        assert worker.process_one()  # the parent
        started = time.perf_counter()
        assert worker.process_one()  # the map: expanded
        seconds = time.perf_counter() - started
        worker.close()
        assert queue.stats()["pending"] == items + 1
        return seconds


def submit_seconds(items: int, workers: int) -> float:
    from harness import jobs

    with temporary_directory() as directory:
        queue = JobQueue(f"{directory}/q.db")
        batch = [Job(f"item_noop[{i}]", jobs.item_noop, params={"item": i})
                 for i in range(items)]
        started = time.perf_counter()
        queue.submit_workflow("jobs", batch)
        return time.perf_counter() - started


def _drain(queue: JobQueue, workers: int, done: Callable[[], bool]) -> float:
    worker = Worker(queue, polling_interval=0.05, concurrency=workers)
    started = time.perf_counter()
    worker.start_background()
    while not done():
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    worker.stop(wait=True)
    return seconds


def map_drain_seconds(items: int, workers: int) -> float:
    from harness import jobs

    with temporary_directory() as directory:
        queue = JobQueue(f"{directory}/q.db")
        wf = Workflow("map")
        numbers = wf.add_task(jobs.numbers, params={"n": items})
        mapped = wf.map(jobs.item_noop, over=numbers)
        run = wf.submit(queue)
        expander = Worker(queue)
        assert expander.process_one() and expander.process_one()
        expander.close()
        seconds = _drain(queue, workers, lambda: run.done)
        assert queue.get_status(mapped.id)["status"] == "completed"
        return seconds


def jobs_drain_seconds(items: int, workers: int) -> float:
    from harness import jobs

    with temporary_directory() as directory:
        queue = JobQueue(f"{directory}/q.db")
        wf = Workflow("jobs")
        for i in range(items):
            wf.add_task(jobs.item_noop, params={"item": i}, name=f"item_noop[{i}]")
        run = wf.submit(queue)
        return _drain(queue, workers, lambda: run.done)


def _claim_rate(items: int, held: bool) -> float:
    from harness import jobs

    with temporary_directory() as directory:
        queue = JobQueue(f"{directory}/q.db")
        if held:
            queue.set_limit("held", 1)
            queue.submit_workflow("held", [Job(f"held[{i}]", jobs.item_noop,
                                               params={"item": i}, tags=["held"])
                                           for i in range(items + 1)])
            filler = Worker(queue)
            filler.store.claim("filler", "filler-1")  # running: the limit is full
        queue.submit_workflow("free", [Job(f"free[{i}]", jobs.item_noop, params={"item": i})
                                       for i in range(items)])
        worker = Worker(queue)
        started = time.perf_counter()
        for _ in range(items):
            assert worker.process_one()
        seconds = time.perf_counter() - started
        worker.close()
        assert queue.stats()["completed"] == items
        return items / seconds


def free_claim_rate(items: int, workers: int) -> float:
    return _claim_rate(items, held=False)


def held_claim_rate(items: int, workers: int) -> float:
    return _claim_rate(items, held=True)


MEASURES = {
    "expand": expand_seconds, "submit": submit_seconds,
    "map drain": map_drain_seconds, "jobs drain": jobs_drain_seconds,
    "claim rate, no limits": free_claim_rate, "claim rate, full limit": held_claim_rate,
}


def _child(name: str, items: int, workers: int, conn: Any) -> None:
    conn.send(MEASURES[name](items, workers))


def measure(name: str, items: int, workers: int) -> float:
    """``name`` measured in a fresh interpreter."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(name, items, workers, child))
    process.start()
    if not parent.poll(TIMEOUT):
        process.kill()
        raise SystemExit(f"{name}: no result within {TIMEOUT:.0f} s")
    value = parent.recv()
    process.join()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    print(summary(describe({"gigq_flow": version("gigq-flow")})))
    print(f"{args.items} items, {args.workers} worker threads, {args.repeat} trial(s)")
    figures: dict[str, list[float]] = {name: [] for name in MEASURES}
    ratios: dict[str, list[float]] = {"expand": [], "drain": [], "claim": []}
    for _ in range(args.repeat):
        trial = {name: measure(name, args.items, args.workers) for name in MEASURES}
        for name, value in trial.items():
            figures[name].append(value)
        ratios["expand"].append(trial["expand"] / trial["submit"])
        ratios["drain"].append(trial["map drain"] / trial["jobs drain"])
        ratios["claim"].append(trial["claim rate, full limit"] / trial["claim rate, no limits"])
    for name, values in figures.items():
        unit = "jobs/s" if "rate" in name else "s"
        print(f"{name:>24}: {statistics.median(values):10.3f} {unit}  "
              f"({', '.join(f'{v:.3f}' for v in values)})")
    verdicts = [
        ("map expansion at most the cost of submitting as many jobs", "expand",
         lambda r: r <= EXPAND_LIMIT),
        ("map items drain within 10% of independent jobs", "drain", lambda r: r <= DRAIN_LIMIT),
        ("claim rate with a full limit at least 0.8x", "claim", lambda r: r >= CLAIM_FLOOR),
    ]
    for text, key, met in verdicts:
        ratio = statistics.median(ratios[key])
        print(f"{text}: {ratio:.2f}x, {'met' if met(ratio) else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"figures": figures, "ratios": ratios, "items": args.items,
                       "workers": args.workers}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
