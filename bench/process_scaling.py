"""Do 4 worker processes drain a queue as fast as 1? Paired trials, gigq_flow and the raw loop.

On this kind of shared machine one run's rate moves by 10–30%, as much as the
difference in question, so a best-of-N table cannot settle it. Each trial drains a
fresh queue with 1 process and a fresh one with 4 (``bench/harness/processes.py``, as
in ``run.py``'s processes scenario), back to back, in alternating order to cancel drift;
the verdict reads the median of the per-trial ratios and their spread.

    python bench/process_scaling.py [--trials 15] [--jobs 3000] [--processes 4]
    python bench/process_scaling.py --job spin --job-ms 1 --jobs 1000   # gigq_flow only

Jobs are no-ops by default, compared with the raw loop's; ``--job spin`` computes and
``--job nap`` sleeps for ``--job-ms`` milliseconds, in gigq_flow jobs only.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from harness.jobs import nap, spin
from harness.processes import drain_in_processes
from harness.systems import SYSTEMS, System, expect_unfinished
from harness.tempdirs import fresh

import gigq_flow

JOBS = {"spin": spin, "nap": nap}
"""Jobs that take time, by ``--job`` name; the default, noop, is each system's own."""


def submit(system: System, jobs: int, job: str, milliseconds: float) -> None:
    if job == "noop":
        system.submit(jobs)
        return
    for i in range(jobs):  # a job other than noop runs on gigq_flow alone
        system.queue.submit(gigq_flow.Job(f"{job}-{i}", JOBS[job],
                                          params={"seconds": milliseconds / 1000}))


def rate(name: str, jobs: int, count: int, job: str, milliseconds: float) -> float:
    """Jobs per second of ``count`` processes draining a fresh queue of ``jobs`` jobs."""
    with fresh(SYSTEMS[name]) as (directory, system):
        submit(system, jobs, job, milliseconds)
        seconds = drain_in_processes(name, directory, count)
        expect_unfinished(system, 0)
    return jobs / seconds


def trial(name: str, count: int, index: int, jobs: int, job: str, milliseconds: float) -> float:
    """Rate with ``count`` processes over the rate with 1, measured back to back."""
    counts = (1, count) if index % 2 == 0 else (count, 1)
    rates = {n: rate(name, jobs, n, job, milliseconds) for n in counts}
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
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per drain (3000)")
    parser.add_argument("--processes", type=int, default=4, help="processes compared with 1 (4)")
    parser.add_argument("--job", choices=["noop", *JOBS], default="noop",
                        help="what each job does (noop)")
    parser.add_argument("--job-ms", type=float, default=1.0,
                        help="milliseconds each spin or nap job takes (1)")
    args = parser.parse_args()
    if args.trials < 2 or args.jobs < 1 or args.processes < 2 or args.job_ms < 0:
        parser.error("--trials must be at least 2, --jobs at least 1, --processes at least 2 "
                     "and --job-ms at least 0")

    compared = ("gigq_flow", "raw sqlite") if args.job == "noop" else ("gigq_flow",)
    ratios: dict[str, list[float]] = {name: [] for name in compared}
    for index in range(args.trials):
        for name in compared:
            ratios[name].append(trial(name, args.processes, index, args.jobs, args.job,
                                      args.job_ms))
        print(f"  trial {index + 1}/{args.trials}: " + ", ".join(
            f"{name} {values[-1]:.2f}x" for name, values in ratios.items()), file=sys.stderr)
    what = "no-op jobs" if args.job == "noop" else f"{args.job} jobs of {args.job_ms:g} ms"
    print(f"{args.processes} processes / 1, {args.jobs} {what}, {args.trials} paired trials")
    for name, values in ratios.items():
        print(f"  {name:<10} {summary(values)}")


if __name__ == "__main__":
    main()
