"""A hyperparameter sweep: one training job per point of a grid, then pick the best.

    make_data ──┬── train (lr=0.001, epochs=20, l2=0) ──┐
                ├── train (lr=0.001, epochs=20, l2=0.1) ─┤
                ├── ...                                  ├── pick_best
                └── train (lr=1.0, epochs=200, l2=0.1) ──┘

``make_data`` makes a data set once and every ``train`` job receives it as a parent
result. The training jobs all carry the task name ``train``, so ``pick_best`` finds
their results as one list in ``parent_results.by_name["train"]``. A configuration that
diverges is a result too (``diverged: true``), not a failure: a failed job would hold
back ``pick_best`` (its dependents become ``upstream_failed``).

Training is deterministic, so a failed attempt is not retried (``max_attempts=1``), and a
job running past ``timeout`` seconds is stopped. The sweep runs on worker threads of this
process; for heavier models, start ``gigq-flow worker`` processes on the same queue.

    python examples/hyperparameter_sweep.py [--db sweep.db] [--workers 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys

from gigq_flow import JobQueue, Workflow, task

DIVERGED_ABOVE = 1e6
"""A weight this large means the step size overshoots: the fit is diverging."""
GRID = {
    "learning_rate": [0.001, 0.01, 0.1, 1.0],
    "epochs": [20, 200],
    "l2": [0.0, 0.1],
}


@task
def make_data(n: int, seed: int) -> dict[str, list[list[float]]]:
    """A noisy line y = 3x - 2, split into training and validation points."""
    rng = random.Random(seed)
    points = [[x, 3 * x - 2 + rng.gauss(0, 0.3)] for x in (rng.uniform(-2, 2) for _ in range(n))]
    cut = int(n * 0.8)
    return {"train": points[:cut], "valid": points[cut:]}


@task(max_attempts=1, timeout=120)
def train(learning_rate: float, epochs: int, l2: float, parent_results) -> dict:
    """Fit y = w x + b by gradient descent; report the validation error."""
    data = parent_results.by_name["make_data"]
    w = b = 0.0
    n = len(data["train"])
    for _ in range(epochs):
        grad_w = sum((w * x + b - y) * x for x, y in data["train"]) * 2 / n + 2 * l2 * w
        grad_b = sum((w * x + b - y) for x, y in data["train"]) * 2 / n
        w, b = w - learning_rate * grad_w, b - learning_rate * grad_b
        if diverged(w, b):
            break
    params = {"learning_rate": learning_rate, "epochs": epochs, "l2": l2}
    if diverged(w, b):
        return {"params": params, "diverged": True, "val_loss": None}
    val_loss = sum((w * x + b - y) ** 2 for x, y in data["valid"]) / len(data["valid"])
    return {"params": params, "diverged": False, "val_loss": val_loss, "w": w, "b": b}


def diverged(*weights: float) -> bool:
    return not all(math.isfinite(x) and abs(x) < DIVERGED_ABOVE for x in weights)


@task
def pick_best(parent_results) -> dict:
    """Fan-in: the configuration with the lowest validation error."""
    trials = parent_results.by_name["train"]
    trials = trials if isinstance(trials, list) else [trials]
    finished = [trial for trial in trials if not trial["diverged"]]
    best = min(finished, key=lambda trial: trial["val_loss"])
    return {"best": best, "trials": len(trials), "diverged": len(trials) - len(finished)}


def build(grid: dict[str, list]) -> Workflow:
    wf = Workflow("sweep")
    data = wf.add_task(make_data, {"n": 200, "seed": 1})
    names = list(grid)
    trials = [wf.add_task(train, dict(zip(names, values, strict=True)), depends_on=[data])
              for values in itertools.product(*grid.values())]
    wf.add_task(pick_best, depends_on=trials)
    return wf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sweep.db", help="the queue file")
    parser.add_argument("--workers", type=int, default=4, help="worker threads")
    args = parser.parse_args(argv)

    run = build(GRID).run(JobQueue(args.db), workers=args.workers, progress=False, timeout=600)
    if run.failed():
        print("the sweep did not complete:", run.failed(), file=sys.stderr)
        return 1
    results = run.results()
    for trial in sorted(results["train"], key=lambda t: (t["val_loss"] is None, t["val_loss"])):
        loss = "diverged" if trial["diverged"] else f"{trial['val_loss']:.4f}"
        print(f"  {json.dumps(trial['params']):60} {loss}")
    summary = results["pick_best"]
    best = summary["best"]
    print(f"{summary['trials']} trials, {summary['diverged']} diverged")
    print(f"best: {json.dumps(best['params'])} val_loss={best['val_loss']:.4f} "
          f"w={best['w']:.3f} b={best['b']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
