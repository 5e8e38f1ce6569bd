"""Module-level job functions for the workflow tests.

Workers import job functions by module and name; ``tests/`` is on ``sys.path`` in
the test process and on ``PYTHONPATH`` in subprocesses, so these import as
``wffuncs``. Coordination with the test uses ``threading.Event`` objects kept in
``GATES`` (same process only).
"""

from __future__ import annotations

import os
import threading
from datetime import datetime

from gigq_flow import task

GATES: dict[str, threading.Event] = {}
_gates_lock = threading.Lock()


def event(key: str) -> threading.Event:
    """The process-wide Event named ``key`` (created on first use)."""
    with _gates_lock:
        gate = GATES.get(key)
        if gate is None:
            gate = GATES[key] = threading.Event()
        return gate


class Point:
    """A value JSON cannot hold; pickles because it is defined at module level."""

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self):
        return hash((self.x, self.y))

    def __repr__(self):
        return f"Point({self.x!r}, {self.y!r})"


# -- plain functions ---------------------------------------------------------------------
def value(value):
    return value


def add(a, b):
    return a + b


def boom(message="boom"):
    raise RuntimeError(message)


def parents(parent_results):
    """Report what was injected: ids in order, values in order, and by_name."""
    return {
        "ids": list(parent_results),
        "values": list(parent_results.values()),
        "by_name": dict(parent_results.by_name),
    }


def sum_parents(parent_results):
    return sum(parent_results.values())


def sum_by_name(parent_results, names):
    """Sum the parents' results picked by task name."""
    return sum(parent_results.by_name[name] for name in names)


def gigq_style(x, parent_results=None):
    """Written for GigQ: only iterates parent_results as a plain dict."""
    return x + sum(v for _, v in sorted(parent_results.items()))


def describe_parents(parent_results):
    """For pickle round-trips: return what came in, as it came in (names -> values)."""
    return {name: value for name, value in parent_results.by_name.items()}


def make_set(items):
    return set(items)


def make_rich(n):
    """A result JSON cannot hold: a set, a tuple, a frozenset and a module-level class."""
    return {"set": set(range(n)), "tuple": (n, "x"), "frozen": frozenset({n}),
            "point": Point(n, -n)}


def echo_params(**params):
    """Return the params exactly as received (with parent_results removed)."""
    params.pop("parent_results", None)
    return params


def type_names(parent_results):
    """What types arrived through parent_results, by name."""
    return {name: type(value).__name__ for name, value in parent_results.by_name.items()}


# -- decorated tasks ---------------------------------------------------------------------
@task(name="double", max_attempts=1)
def double(x):
    return 2 * x


@task(serializer="pickle", max_attempts=1)
def pickled_set(n):
    return set(range(n))


# -- blocking and failing on demand ------------------------------------------------------
def block(key, result="released"):
    """Set ``<key>:started``, wait (up to 30 s) for ``<key>:release``."""
    event(f"{key}:started").set()
    if not event(f"{key}:release").wait(30):
        raise RuntimeError(f"{key}: never released")
    return result


def dag_step(label, fail, parent_results=None):
    """The job of the random DAGs: records when its body started and which parent
    results it saw (None for a parent that had not completed), then fails exactly
    when ``fail`` is true."""
    started = datetime.now().isoformat(timespec="microseconds")
    saw = [None if r is None else r["label"] for r in (parent_results or {}).values()]
    if fail:
        raise RuntimeError(f"planned failure of {label}")
    return {"label": label, "started": started, "saw": saw}


def fail_if_flag(label, flag_dir):
    """Fails while the file ``flag_dir/label`` exists; so a requeue can succeed."""
    if os.path.exists(os.path.join(flag_dir, label)):
        raise RuntimeError(f"flagged failure of {label}")
    return label
