"""Do 4 worker processes drain a queue as fast as 1? Paired trials, gigq_flow and the raw loop.

On this kind of shared machine one run's rate moves by 10–30%, as much as the
difference in question, so a best-of-N table cannot settle it. Each trial drains a
fresh queue of no-op jobs with 1 process and a fresh one with 4 (the harness of
``run.py``'s processes scenario), back to back, in alternating order to cancel drift;
the verdict reads the median of the per-trial ratios and their spread.

    python bench/process_scaling.py [--trials 15] [--jobs 3000] [--processes 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from run import drain_in_processes, expect_unfinished
from scratch import fresh
from systems import SYSTEMS

COMPARED = ("gigq_flow", "raw sqlite")


def rate(name: str, jobs: int, count: int) -> float:
    """Jobs per second of ``count`` processes draining ``jobs`` fresh no-op jobs."""
    with fresh(SYSTEMS[name]) as (directory, system):
        system.submit(jobs)
        seconds = drain_in_processes(name, directory, count)
        expect_unfinished(system, 0)
    return jobs / seconds


def trial(name: str, jobs: int, count: int, index: int) -> float:
    """Rate with ``count`` processes over the rate with 1, measured back to back."""
    counts = (1, count) if index % 2 == 0 else (count, 1)
    rates = {n: rate(name, jobs, n) for n in counts}
    return rates[count] / rates[1]


def summary(ratios: list[float]) -> str:
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive")
    at_least_one = sum(ratio >= 1.0 for ratio in ratios)
    return (f"median {statistics.median(ratios):.2f}x, quartiles {quartiles[0]:.2f}–"
            f"{quartiles[2]:.2f}, range {min(ratios):.2f}–{max(ratios):.2f}, "
            f"{at_least_one} of {len(ratios)} trials at 1.00x or more")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=15, help="paired trials per system (15)")
    parser.add_argument("--jobs", type=int, default=3000, help="no-op jobs per drain (3000)")
    parser.add_argument("--processes", type=int, default=4, help="processes compared with 1 (4)")
    args = parser.parse_args()
    if args.trials < 2 or args.jobs < 1 or args.processes < 2:
        parser.error("--trials must be at least 2, --jobs at least 1, --processes at least 2")

    ratios: dict[str, list[float]] = {name: [] for name in COMPARED}
    for index in range(args.trials):
        for name in COMPARED:
            ratios[name].append(trial(name, args.jobs, args.processes, index))
        print(f"  trial {index + 1}/{args.trials}: " + ", ".join(
            f"{name} {values[-1]:.2f}x" for name, values in ratios.items()), file=sys.stderr)
    print(f"{args.processes} processes / 1, {args.jobs} no-op jobs, {args.trials} paired trials")
    for name, values in ratios.items():
        print(f"  {name:<10} {summary(values)}")


if __name__ == "__main__":
    main()
