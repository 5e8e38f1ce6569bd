"""More threads against one on the kernel-dag DAG, paired: each round runs
``Workflow.run(workers=1)`` and ``Workflow.run(workers=4)`` in fresh processes (which goes
first alternates), then the medians of each one's wall time, CPU time and voluntary
context switches, and the median over rounds of workers=1's time over workers=4's.

    python bench/thread_scaling.py [--rounds 15] [--steps 2000]

On a shared machine a single run of either can land 30% off its median; pairs taken
close together, and their median, show what the threads cost.
"""

from __future__ import annotations

import argparse
import statistics

from harness.kernel_dag import check_steps, paired_ratios
from harness.kernel_dag_systems import in_fresh_process

FIGURES = (("seconds", "{:.3f} s"), ("CPU seconds", "{:.3f} s of CPU"),
           ("voluntary context switches", "{:.0f} voluntary context switches"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="pairs of runs (15)")
    parser.add_argument("--steps", type=int, default=2000, help="steps of the DAG (2000)")
    args = parser.parse_args()
    wrong = check_steps(args.steps, "--steps") or (
        "--rounds must be at least 1" if args.rounds < 1 else None)
    if wrong:
        parser.error(wrong)
    runs: dict[int, list[dict[str, float]]] = {1: [], 4: []}
    for round_ in range(args.rounds):
        for workers in (1, 4) if round_ % 2 == 0 else (4, 1):
            runs[workers].append(in_fresh_process("gigq_flow", {"steps": args.steps,
                                                                "workers": workers}))
    print(f"{args.steps:,}-step kernel DAG, {args.rounds} rounds, medians:")
    for workers, figures in runs.items():
        print(f"  workers={workers}: " + ", ".join(
            form.format(statistics.median(run[key] for run in figures))
            for key, form in FIGURES))
    ratios = paired_ratios(runs[1], runs[4])
    print(f"  workers=1's time over workers=4's, median of the pairs: "
          f"{statistics.median(ratios):.3f} (from {min(ratios):.2f} to {max(ratios):.2f})")


if __name__ == "__main__":
    main()
