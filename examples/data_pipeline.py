"""A data pipeline whose steps pass their results to the next ones.

    extract ── validate ──┬── daily_stats ───┬── write_report
                          └── find_outliers ─┘

Each step is a plain function. A step with parents receives their results in
``parent_results`` (parent job id -> result; ``parent_results.by_name`` is keyed by task
name); whatever a step returns is stored in the queue, as JSON, for the steps after it
and for you (``run.results()``). The workflow runs on worker threads of this process.

    python examples/data_pipeline.py [--db data_pipeline.db] [--out report.json] [--days 14]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from statistics import mean, pstdev

from gigq_flow import JobQueue, Workflow, task

SENSORS = ("boiler", "chiller", "pump")


@task
def extract(days: int, seed: int) -> list[dict]:
    """Stand-in for reading a source: hourly readings of every sensor, a few broken."""
    rng = random.Random(seed)
    rows = []
    for day in range(days):
        for hour in range(24):
            for sensor in SENSORS:
                value = 20 + 5 * math.sin(hour / 24 * 2 * math.pi) + rng.gauss(0, 1)
                if rng.random() < 0.01:
                    value = 400.0  # a glitch for find_outliers
                rows.append({"day": day, "hour": hour, "sensor": sensor,
                             "value": None if rng.random() < 0.02 else round(value, 3)})
    return rows


@task
def validate(parent_results) -> dict:
    """Drop the rows without a value; keep count of what was dropped."""
    rows = parent_results.by_name["extract"]
    good = [row for row in rows if row["value"] is not None]
    return {"rows": good, "dropped": len(rows) - len(good)}


@task
def daily_stats(parent_results) -> dict[str, list[dict]]:
    """Per sensor and day: mean, min and max of the valid readings."""
    by_key: dict[tuple[str, int], list[float]] = {}
    for row in parent_results.by_name["validate"]["rows"]:
        by_key.setdefault((row["sensor"], row["day"]), []).append(row["value"])
    stats: dict[str, list[dict]] = {sensor: [] for sensor in SENSORS}
    for (sensor, day), values in sorted(by_key.items()):
        stats[sensor].append({"day": day, "mean": round(mean(values), 3),
                              "min": min(values), "max": max(values)})
    return stats


@task
def find_outliers(threshold: float, parent_results) -> list[dict]:
    """Readings more than ``threshold`` standard deviations from their sensor's mean."""
    rows = parent_results.by_name["validate"]["rows"]
    outliers = []
    for sensor in SENSORS:
        values = [row["value"] for row in rows if row["sensor"] == sensor]
        centre, spread = mean(values), pstdev(values)
        outliers += [row for row in rows if row["sensor"] == sensor
                     and abs(row["value"] - centre) > threshold * spread]
    return outliers


@task
def write_report(path: str, parent_results) -> dict:
    """Fan-in: one JSON report from both branches; returns its summary."""
    stats = parent_results.by_name["daily_stats"]
    outliers = parent_results.by_name["find_outliers"]
    summary = {
        "sensors": len(stats),
        "days": len(stats[SENSORS[0]]),
        "outliers": len(outliers),
        "hottest_day": max((s["mean"], sensor, s["day"]) for sensor in stats
                           for s in stats[sensor])[1:],
    }
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"summary": summary, "daily": stats, "outliers": outliers}, file, indent=1)
    return summary


def build(days: int, out: str, seed: int = 7) -> Workflow:
    wf = Workflow("sensor report")
    raw = wf.add_task(extract, {"days": days, "seed": seed})
    valid = wf.add_task(validate, depends_on=[raw])
    stats = wf.add_task(daily_stats, depends_on=[valid])
    outliers = wf.add_task(find_outliers, {"threshold": 4.0}, depends_on=[valid])
    wf.add_task(write_report, {"path": out}, depends_on=[stats, outliers])
    return wf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="data_pipeline.db", help="the queue file")
    parser.add_argument("--out", default="report.json", help="where the report goes")
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args(argv)

    wf = build(args.days, args.out)
    wf.validate()
    run = wf.run(JobQueue(args.db), workers=2, progress=False, timeout=120)
    if not run.status()["done"] or run.failed():
        print("the pipeline did not complete:", run.failed(), file=sys.stderr)
        return 1
    results = run.results()
    print(f"workflow {run.id}: {run.status()['counts']['completed']} steps completed")
    print(f"rows extracted: {len(results['extract'])}, "
          f"dropped by validate: {results['validate']['dropped']}")
    print("report:", json.dumps(results["write_report"]))
    print("written to", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
