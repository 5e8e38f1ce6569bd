"""Import time of the package and of the CLI, from ``python -X importtime``.

Each measurement runs a fresh interpreter; the figure is the median over ``--runs`` of the
cumulative import time the interpreter reports for the module, in milliseconds. It also
lists which heavy optional packages the import loaded (none should be, for either).
``--root`` measures another checkout (e.g. a worktree of an older commit) by putting it
first on ``PYTHONPATH``.

    python bench/import_time.py [--runs 21] [--root PATH ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

HEAVY = ("networkx", "graphviz", "pygraphviz", "ipywidgets", "tqdm", "psycopg", "rich")
TARGETS = (
    ("import gigq_flow", "gigq_flow"),
    ("gigq-flow --help (import gigq_flow.cli)", "gigq_flow.cli"),
)


def import_time(module: str, root: str | None, runs: int) -> tuple[float, list[str]]:
    """Median cumulative milliseconds to import ``module``, and the heavy packages loaded."""
    env = dict(os.environ)
    if root:
        env["PYTHONPATH"] = os.path.abspath(root)
    times, loaded = [], set()
    for _ in range(runs):
        report = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True, text=True, env=env, cwd="/", check=True,
        ).stderr
        for line in report.splitlines():
            if "|" not in line or line.startswith("import time: self"):
                continue
            _, cumulative, name = (part.strip() for part in line.split("|"))
            if name == module:
                times.append(int(cumulative) / 1000)
            if name in HEAVY:
                loaded.add(name)
    return statistics.median(times), sorted(loaded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--root", action="append", default=[None],
                        help="also measure the checkout at PATH")
    args = parser.parse_args()
    for root in args.root:
        print(f"{root or 'installed package'}:")
        for label, module in TARGETS:
            median, loaded = import_time(module, root, args.runs)
            print(f"  {label:<42} {median:7.1f} ms  heavy packages: "
                  f"{', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
