"""The module-level functions that test jobs run.

Workers import a job's function by module and name, so every function a test job runs
is defined here, once, and job rows name it ``support.jobs.<name>``. Worker threads of
the test process and worker subprocesses import it alike: ``tests/`` is on ``sys.path``
of the test process (pytest's ``pythonpath``) and on ``PYTHONPATH`` of the subprocesses
(:func:`support.helpers.subprocess_env`).

Jobs coordinate with the test in two ways:

- in the same process (worker threads), through ``GATES``: named ``threading.Event``
  and ``threading.Barrier`` objects shared by the test and the worker threads
  (:func:`event`, :func:`barrier`, :func:`block_until_released`);
- across processes, through files: :func:`hold` appends its pid to a "started" file and
  waits for a "release" file to exist.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from shutil import (
    copyfile,  # used by ``snapshot``; test_security reaches it as support.jobs.copyfile
)
from typing import Any

from gigq_flow import task

FAIL_ENV = "GIGQ_FLOW_TEST_HOLD_FAILS"
"""When set in a worker's environment, :func:`hold` raises instead of returning."""

GATES: dict[str, threading.Event | threading.Barrier] = {}
_gates_lock = threading.Lock()
_calls: dict[str, int] = {}


def event(key: str) -> threading.Event:
    """The process-wide Event named ``key`` (created on first use)."""
    with _gates_lock:
        gate = GATES.get(key)
        if gate is None:
            gate = GATES[key] = threading.Event()
        return gate  # type: ignore[return-value]


def barrier(key: str, parties: int) -> threading.Barrier:
    """The process-wide Barrier named ``key`` for ``parties`` threads (created on first use)."""
    with _gates_lock:
        gate = GATES.get(key)
        if gate is None:
            gate = GATES[key] = threading.Barrier(parties)
        return gate  # type: ignore[return-value]


def _count_call(key: str) -> int:
    """How many times this process has called a job with ``key``, this call included."""
    with _gates_lock:
        _calls[key] = _calls.get(key, 0) + 1
        return _calls[key]


# -- plain functions -----------------------------------------------------------------------
def add(a, b):
    return a + b


def noop():
    return None


def identity(value=None):
    return value


def echo_params(**params):
    """Return the params exactly as received (with parent_results removed)."""
    params.pop("parent_results", None)
    return params


def record_call(log_path, label):
    """Append ``label`` as a line to the file at ``log_path``; return it."""
    with open(log_path, "a") as f:
        f.write(f"{label}\n")
    return label


def record_time(log_path):
    """Append time.time() at the moment the job runs; return it."""
    now = time.time()
    with open(log_path, "a") as f:
        f.write(f"{now!r}\n")
    return now


def sleep_for(seconds, started=None):
    """Sleep ``seconds`` and return them; with ``started``, first append this pid to that
    file (so a test sees which process runs the job)."""
    if started is not None:
        record_call(started, str(os.getpid()))
    time.sleep(seconds)
    return seconds


def work(key, ms):
    """Sleep ``ms`` milliseconds; the result names the job and the process that ran it."""
    time.sleep(ms / 1000)
    return {"key": key, "pid": os.getpid()}


def chatty(value):
    """Print to stdout, write to file descriptor 1 and read stdin, then return ``value``
    and what stdin held. Only for an MCP server's worker (``gigq_run_worker``): the server
    must keep all three off its protocol streams."""
    print(f"chatty prints {value}", flush=True)
    os.write(1, f"chatty writes {value} to fd 1\n".encode())
    return {"value": value, "stdin": sys.stdin.read()}


def touch(path):
    """Create ``path``. Pickled payloads call it on unpickling to show they were decoded."""
    Path(path).touch()
    return path


def snapshot(src, dst):
    copyfile(src, dst)
    return dst


# -- failing on purpose --------------------------------------------------------------------
def fail(message="planned failure"):
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


def flaky(key):
    """Fails on its first call for ``key`` in this process, then succeeds."""
    count = _count_call(key)
    if count == 1:
        raise RuntimeError(f"first attempt of {key} fails")
    return count


def fail_if_flag(label, flag_dir):
    """Fails while the file ``flag_dir/label`` exists; so a requeue can succeed."""
    if os.path.exists(os.path.join(flag_dir, label)):
        raise RuntimeError(f"flagged failure of {label}")
    return label


def die(started):
    """Kill the worker process running it, every time (a poison job)."""
    record_call(started, str(os.getpid()))
    os._exit(1)


# -- parent_results ------------------------------------------------------------------------
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


def type_names(parent_results):
    """What types arrived through parent_results, by name."""
    return {name: type(value).__name__ for name, value in parent_results.by_name.items()}


def dag_step(label, fail, parent_results=None):
    """The job of the random DAGs: records when its body started and which parent
    results it saw (None for a parent that had not completed), then fails exactly
    when ``fail`` is true."""
    started = datetime.now().isoformat(timespec="microseconds")
    saw = [None if r is None else r["label"] for r in (parent_results or {}).values()]
    if fail:
        raise RuntimeError(f"planned failure of {label}")
    return {"label": label, "started": started, "saw": saw}


def work_after_parents(key, ms, parents, violations, parent_results=None):
    """A DAG node of the chaos tests: check that every parent's result is there (the
    parent completed before this attempt started), appending a missing one to the file
    ``violations``; then :func:`work`."""
    seen = {value.get("key") for value in (parent_results or {}).values()
            if isinstance(value, dict)}
    missing = sorted(set(parents) - seen)
    if missing:
        record_call(violations, f"{key} started before {missing} completed")
    return work(key, ms)


# -- values JSON cannot hold -----------------------------------------------------------------
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


class UnpicklingSideEffect:
    """Unpickling this object creates a file: proof that a payload was decoded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (touch, (self.path,))


def make_set(items):
    return set(items)


def make_rich(n):
    """A result JSON cannot hold: a set, a tuple, a frozenset and a module-level class."""
    return {"set": set(range(n)), "tuple": (n, "x"), "frozen": frozenset({n}),
            "point": Point(n, -n)}


# -- maps ------------------------------------------------------------------------------------
def numbers(n, extra=None):
    """``list(range(n))``, then ``extra`` if given (a value a map's item may choke on)."""
    return list(range(n)) + ([] if extra is None else [extra])


def total(parent_results):
    """The sum of each parent's list (a map's result)."""
    return sum(sum(value) for value in parent_results.values())


# -- decorated tasks -------------------------------------------------------------------------
@task(name="double", max_attempts=1)
def double(x):
    return 2 * x


@task(serializer="pickle", max_attempts=1)
def pickled_set(n):
    return set(range(n))


@task(name="tagged", priority=7, max_attempts=5, description="from @task")
def tagged(x=1):
    return x * 10


# -- coordination with the test ------------------------------------------------------------
def block_until_released(key, result="released"):
    """Signal ``<key>:started``, then wait (up to 30 s) for ``<key>:release``."""
    event(f"{key}:started").set()
    if not event(f"{key}:release").wait(30):
        raise RuntimeError(f"{key}: never released")
    return result


def block_first_attempt(key):
    """The first call blocks like block_until_released; later calls return at once."""
    attempt = _count_call(key)
    if attempt == 1:
        return block_until_released(key, result="first attempt")
    return f"attempt {attempt}"


def meet_at_barrier(key, parties=2):
    """Return only when ``parties`` jobs wait here at the same time (else BrokenBarrierError)."""
    barrier(key, parties).wait(timeout=15)
    return threading.current_thread().name


def hold(started, release, timeout=120.0):
    """For worker subprocesses: append this pid to ``started``, wait for the file
    ``release`` to exist, then return ``{"pid": ...}`` (or raise, in a worker whose
    environment sets FAIL_ENV)."""
    record_call(started, str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{release} never appeared")
        time.sleep(0.01)
    if os.environ.get(FAIL_ENV):
        raise RuntimeError(f"attempt in process {os.getpid()} failed on purpose")
    return {"pid": os.getpid()}


# -- maps and limits ------------------------------------------------------------------------
def square(item, offset=0):
    """``item * item + offset`` after a random sleep of up to 20 ms, so that the items
    of a map finish out of order."""
    time.sleep(random.uniform(0, 0.02))
    return item * item + offset


def square_unless_blocked(item, blocked, release):
    """:func:`square`, except that it fails for the items in ``blocked`` while the file
    ``release`` does not exist."""
    if item in blocked and not os.path.exists(release):
        raise RuntimeError(f"item {item} is blocked until {release} exists")
    return square(item)


def sum_of(parent_results, name):
    """The sum of the list that the parent named ``name`` returned (a map's results)."""
    return sum(parent_results.by_name[name])


def not_a_list():
    """A result a map cannot map over."""
    return {"a": 1}


def timed(label, log_path, seconds):
    """Sleep ``seconds``; append ``label start end`` (time.time() at both ends) to the
    file at ``log_path``; return ``label``."""
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    with open(log_path, "a") as f:
        f.write(f"{label} {start!r} {end!r}\n")
    return label


# -- things that cannot be jobs ------------------------------------------------------------
NOT_A_FUNCTION = 42
lambda_fn = lambda: "from a lambda"  # noqa: E731 - submitted by its path, found by it


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


# -- output --------------------------------------------------------------------------------
def talk(label, lines=3):
    """Print ``lines`` lines to stdout, one to stderr, and log a warning and an error with
    its traceback; return ``label``."""
    for i in range(lines):
        print(f"{label} line {i}")
    print(f"{label} to stderr", file=sys.stderr)
    step_log = logging.getLogger(f"steps.{label}")
    step_log.warning("careful with %s", label)
    try:
        raise KeyError(label)
    except KeyError:
        step_log.exception("caught one")
    return label


def print_then_fail(label):
    print(f"{label} is about to fail")
    raise ValueError(f"deep problem in {label}")


def print_lots(n, width=50):
    """Print ``n`` lines of ``width`` characters."""
    for i in range(n):
        print(f"{i:>{width}}")
    return n


def print_until_released(key):
    """Print a line, signal ``<key>:started``, wait for ``<key>:release``, print another."""
    print(f"{key} started")
    event(f"{key}:started").set()
    if not event(f"{key}:release").wait(30):
        raise RuntimeError(f"{key}: never released")
    print(f"{key} released")
    return key


def print_from_a_thread():
    print("from the step")
    helper = threading.Thread(target=print, args=("from its thread",))
    helper.start()
    helper.join()


def work_until_cancelled(key, limit=30.0):
    """Report ``current_job()`` under ``<key>:started``, then loop calling
    check_cancelled() until it raises (or ``limit`` seconds pass: then it returns)."""
    from gigq_flow import check_cancelled, current_job

    _reports[key] = current_job()
    event(f"{key}:started").set()
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            check_cancelled()
            time.sleep(0.01)
    except Exception as exc:
        _reports[f"{key}:raised"] = exc
        event(f"{key}:stopped").set()
        raise
    return "never cancelled"


_reports: dict[str, Any] = {}


def report(key):
    """What a job left under ``key`` in this process (see work_until_cancelled)."""
    return _reports.get(key)


# -- steps on processes ----------------------------------------------------------------------
def whoami(value=None, parent_results=None):
    """This process's id, ``value`` and the parents' results by name, printed and logged."""
    print(f"whoami {value} in {os.getpid()}")
    logging.getLogger("steps.whoami").warning("logged %s", value)
    parents = {} if parent_results is None else dict(parent_results.by_name)
    return {"pid": os.getpid(), "value": value, "parents": parents}


def hang(pid_file, ignore_sigterm=False):
    """Append this pid to ``pid_file``, then sleep until killed (not cooperative: it never
    calls check_cancelled); with ``ignore_sigterm`` only SIGKILL ends it."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record_call(pid_file, str(os.getpid()))
    while True:
        time.sleep(0.05)


def exit_now(code):
    """End the process at once with ``code``, as a crashing extension would."""
    print("about to exit", flush=True)
    os._exit(code)


def segfault():
    """Crash the process with SIGSEGV."""
    import ctypes

    ctypes.string_at(0)


# -- maps in pictures ------------------------------------------------------------------------
def square_unless(item, fail_every=0, gate=None):
    """``item ** 2``; raises for every item divisible by ``fail_every`` (0: none). With
    ``gate``, items divisible by 3 wait for the event ``<gate>:release`` first."""
    if gate is not None and item % 3 == 0:
        event(f"{gate}:started").set()
        if not event(f"{gate}:release").wait(60):
            raise TimeoutError(f"{gate} was never released")
    if fail_every and item % fail_every == 0:
        raise ValueError(f"item {item} is divisible by {fail_every}")
    return item * item
