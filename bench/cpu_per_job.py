"""CPU time per job of a single in-process worker, for each system of ``harness.systems``.

CPU time (user + system, ``time.process_time``) moves less than wall time on a shared
machine, so it shows what a job costs each system more steadily.

    python bench/cpu_per_job.py [--jobs 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.systems import SYSTEMS, drain, expect_unfinished
from harness.tempdirs import fresh


def cpu_per_job(system_class: type, jobs: int) -> float:
    """Microseconds of CPU per job to drain ``jobs`` no-op jobs with ``process_one``."""
    with fresh(system_class) as (_, system):
        system.submit(jobs)
        start = time.process_time()
        drain(system)
        spent = time.process_time() - start
        expect_unfinished(system, 0)
    return spent / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for system_class in SYSTEMS.values():
        runs = [cpu_per_job(system_class, args.jobs) for _ in range(args.repeat)]
        print(f"{system_class.name:<12} {statistics.median(runs):7.0f} µs CPU per job "
              f"(median of {args.repeat}; runs {', '.join(f'{r:.0f}' for r in runs)})")


if __name__ == "__main__":
    main()
