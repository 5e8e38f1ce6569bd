"""Where a step of an incremental run spends its time: the phases of one worker draining
the no-op DAG of ``bench/cache.py`` with cache=False, with cache=True and nothing to
reuse, and with every step reused.

    python bench/cache_profile.py [--steps 3000] [--repeat 3] [--cprofile 20]

One ``Worker`` in this process (no threads) calls ``process_one`` until no step is
ready; the workflow is submitted first (not timed). A round drains cache=False on a
fresh file, then cache=True on another fresh file (nothing to reuse), then the same
workflow again with cache=True on that file (every step reused). Phases, in
microseconds per step (median of ``--repeat`` rounds), timed by wrapping the worker
store's methods and ``gigq_flow.step_cache.step_key`` (each wrapper adds well under a
microsecond):

- claim:      ``Store.claim``, a transaction. For a step of a cached run whose function
              the worker has loaded, the claim's transaction also reads the parents'
              result digests, looks the key up and, on a hit, completes the step (the
              key's own time is shown apart, under key).
- parents, lookup: ``Store.parent_results`` and ``Store.find_cached``, outside the claim:
              only for a step whose function was not loaded when it was claimed.
- key:        ``step_key``: the code fingerprint, the params' digest, the parents' part.
- completion: ``Store.complete`` (cache=False), ``complete_cached`` (the result and its
              cache entry) or ``reuse`` (outside the claim), each a transaction.
- the rest:   everything else in ``process_one``: loading the function, decoding the
              params, inspecting its signature, calling it, the worker's bookkeeping.

With ``--cprofile N``, the reused drain runs once more under cProfile, and its top N
functions are printed by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from harness.layered import Shape, layered
from harness.tempdirs import temporary_directory

import gigq_flow.step_cache
from gigq_flow import JobQueue, Worker

PHASES = {
    "claim": ("claim",),
    "parents": ("parent_results",),
    "lookup": ("find_cached",),
    "completion": ("complete", "complete_cached", "reuse"),
}
"""Phase -> the worker store's methods timed as that phase (``key`` is timed apart)."""
COLUMNS = ("claim", "parents", "key", "lookup", "completion", "the rest", "total")
OFF, FIRST, REUSED = "cache=False", "cache=True, none reused", "cache=True, all reused"

F = TypeVar("F", bound=Callable[..., Any])


class Phases:
    """Seconds spent in each phase since the last ``reset``."""

    def __init__(self) -> None:
        self.spent: defaultdict[str, float] = defaultdict(float)

    def timed(self, phase: str, function: F) -> F:
        spent = self.spent

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - began

        return wrapper  # type: ignore[return-value]

    def watch(self, worker: Worker) -> None:
        """Time the phases of ``worker``'s store (its own: opened from a path)."""
        for phase, methods in PHASES.items():
            for method in methods:
                setattr(worker.store, method, self.timed(phase, getattr(worker.store, method)))


@contextmanager
def keys_timed(phases: Phases) -> Iterator[None]:
    original = gigq_flow.step_cache.step_key
    gigq_flow.step_cache.step_key = phases.timed("key", original)
    try:
        yield
    finally:
        gigq_flow.step_cache.step_key = original


def drain(path: str, shape: Shape, cache: bool, phases: Phases | None,
          profile: cProfile.Profile | None = None) -> dict[str, float]:
    """Submit the shape on ``path``, drain it with one worker; microseconds per step (by
    phase, if ``phases``)."""
    queue = JobQueue(path)
    layered(shape).submit(queue, cache=cache)
    worker = Worker(path)
    spent: dict[str, float] = {}
    if phases is not None:
        phases.watch(worker)
        phases.spent.clear()
        spent = phases.spent
    steps = 0
    try:
        if profile is not None:
            profile.enable()
        began = time.perf_counter()
        while worker.process_one():
            steps += 1
        total = time.perf_counter() - began
        if profile is not None:
            profile.disable()
    finally:
        worker.close()
    left = queue.stats()
    queue.close()
    if left["pending"] or left["running"]:  # a claim may reuse several steps: count jobs
        raise RuntimeError(f"{steps} claims left steps unfinished: {left}")
    steps = shape.steps
    per_step = {phase: 1e6 * seconds / steps for phase, seconds in spent.items()}
    if "claim" in per_step:  # keys are computed inside the claims (see the docstring)
        per_step["claim"] -= per_step.get("key", 0.0)
    per_step["total"] = 1e6 * total / steps
    per_step["the rest"] = per_step["total"] - sum(
        value for phase, value in per_step.items() if phase != "total")
    return per_step


def measure(shape: Shape, repeat: int) -> dict[str, list[dict[str, float]]]:
    phases = Phases()
    rounds: dict[str, list[dict[str, float]]] = {OFF: [], FIRST: [], REUSED: []}
    with keys_timed(phases):
        for _ in range(repeat):
            with temporary_directory() as directory:
                off, cached = (os.path.join(directory, name) for name in ("off.db", "cached.db"))
                rounds[OFF].append(drain(off, shape, False, phases))
                rounds[FIRST].append(drain(cached, shape, True, phases))
                rounds[REUSED].append(drain(cached, shape, True, phases))
    return rounds


def profile_reused(shape: Shape, top: int) -> pstats.Stats:
    profile = cProfile.Profile()
    with temporary_directory() as directory:
        path = os.path.join(directory, "cached.db")
        drain(path, shape, True, None)
        drain(path, shape, True, None, profile)
    return pstats.Stats(profile)


def table(rounds: dict[str, list[dict[str, float]]]) -> str:
    lines = [f"{'µs per step':<24}" + "".join(f"{column:>11}" for column in COLUMNS)]
    for which, measured in rounds.items():
        cells = []
        for column in COLUMNS:
            values = [round_[column] for round_ in measured if column in round_]
            cells.append(f"{statistics.median(values):>11.1f}" if values else f"{'-':>11}")
        lines.append(f"{which:<24}" + "".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="steps of the no-op DAG (3000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds; medians are reported (3)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="also profile a reused drain and print its top N functions")
    args = parser.parse_args()
    if args.steps < 1 or args.repeat < 1 or args.cprofile < 0:
        parser.error("--steps and --repeat must be at least 1, --cprofile at least 0")

    shape = Shape(args.steps)
    rounds = measure(shape, args.repeat)
    print(f"{shape.describe()}, one worker in this process, median of {args.repeat} rounds, "
          f"load average at start {os.getloadavg()[0]:.1f}")
    print(table(rounds))
    totals = {which: statistics.median(r["total"] for r in measured)
              for which, measured in rounds.items()}
    print(f"total / cache=False: none reused {totals[FIRST] / totals[OFF]:.2f}x, "
          f"all reused {totals[REUSED] / totals[OFF]:.2f}x")
    if args.cprofile:
        stats = profile_reused(shape, args.cprofile)
        for order in ("tottime", "cumulative"):
            print(f"\ncProfile of a reused drain, by {order}:")
            stats.sort_stats(order).print_stats(args.cprofile)


if __name__ == "__main__":
    main()
