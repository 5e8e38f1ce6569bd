"""Module-level functions that test jobs run.

Workers import job functions by module and name, so these live in an importable
module (``tests/`` is on ``sys.path`` in the test process and on ``PYTHONPATH``
in worker subprocesses). Cross-thread coordination uses ``GATES``: named
``threading.Event``/``Barrier`` objects shared by the test and the worker threads
of the same process.
"""

from __future__ import annotations

import os
import threading
import time

GATES: dict[str, object] = {}
_gates_lock = threading.Lock()
_attempts: dict[str, int] = {}


def event(key: str) -> threading.Event:
    """The process-wide Event named ``key`` (created on first use)."""
    with _gates_lock:
        gate = GATES.get(key)
        if gate is None:
            gate = GATES[key] = threading.Event()
        return gate  # type: ignore[return-value]


def barrier(key: str, parties: int) -> threading.Barrier:
    with _gates_lock:
        gate = GATES.get(key)
        if gate is None:
            gate = GATES[key] = threading.Barrier(parties)
        return gate  # type: ignore[return-value]


# -- plain functions ---------------------------------------------------------------------
def add(a, b):
    return a + b


def noop():
    return None


def identity(value):
    return value


def fail_always(message="boom"):
    raise RuntimeError(message)


def fail_n_times(counter_path, n, value="ok"):
    """Raise on the first ``n`` calls (counted in a file), then return ``value``."""
    count = 0
    if os.path.exists(counter_path):
        with open(counter_path) as f:
            count = int(f.read() or 0)
    count += 1
    with open(counter_path, "w") as f:
        f.write(str(count))
    if count <= n:
        raise RuntimeError(f"planned failure {count} of {n}")
    return value


def record_call(log_path, label):
    """Append ``label`` to the file at ``log_path``; return it."""
    with open(log_path, "a") as f:
        f.write(f"{label}\n")
    return label


def record_time(log_path):
    """Append time.time() at the moment the job runs; return it."""
    now = time.time()
    with open(log_path, "a") as f:
        f.write(f"{now!r}\n")
    return now


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


def returns_set():
    return {1, 2, 3}


# -- parent_results in its three modes -------------------------------------------------
def takes_parent_results(parent_results=None):
    """Report what it received: None, or the ids (in order), values and by_name."""
    if parent_results is None:
        return None
    return {
        "ids": list(parent_results),
        "values": list(parent_results.values()),
        "by_name": getattr(parent_results, "by_name", None),
    }


def takes_kwargs(**kwargs):
    """Report the keyword names it received and the parent ids, if any."""
    parents = kwargs.get("parent_results")
    return {
        "keys": sorted(kwargs),
        "parent_ids": None if parents is None else list(parents),
    }


def takes_neither(x=1):
    """Accepts neither parent_results nor **kwargs: fails if it is given parent_results."""
    return x


# -- coordination with the test process ------------------------------------------------
def block_until_released(key, result="released"):
    """Signal ``<key>:started``, then wait (up to 30 s) for ``<key>:release``."""
    event(f"{key}:started").set()
    if not event(f"{key}:release").wait(30):
        raise RuntimeError(f"{key}: never released")
    return result


def block_first_attempt(key):
    """The first call blocks like block_until_released; later calls return at once."""
    with _gates_lock:
        attempt = _attempts[key] = _attempts.get(key, 0) + 1
    if attempt == 1:
        return block_until_released(key, result="first attempt")
    return f"attempt {attempt}"


def meet_at_barrier(key, parties=2):
    """Return only when ``parties`` jobs wait here at the same time (else BrokenBarrierError)."""
    barrier(key, parties).wait(timeout=15)
    return threading.current_thread().name


def wait_for_file(started_path, release_path, result="done"):
    """For subprocess workers: create ``started_path``, wait for ``release_path`` to exist."""
    with open(started_path, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not os.path.exists(release_path):
        if time.monotonic() > deadline:
            raise RuntimeError("never released")
        time.sleep(0.01)
    return result


# -- things @task must refuse ----------------------------------------------------------
async def async_function():
    return 1


def generator_function():
    yield 1


class Holder:
    def method(self):
        return 1

    @staticmethod
    def static_method():
        return 1
