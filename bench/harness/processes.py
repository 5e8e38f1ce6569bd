"""Timing worker processes that start together: the harness of every multi-process scenario."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from .systems import SYSTEMS

CHILD_TIMEOUT = 600.0

Drain = Callable[[], "float | None"]
"""Works through a queue in a worker process; returns the ``time.perf_counter()`` of its
last completion, or None if it completed nothing."""
OpenDrain = Callable[..., AbstractContextManager[Drain]]
"""Opens what a worker process drains (not timed) and yields its ``Drain``; a module-level
function, so that a spawned process can import it."""


def time_processes(open_drain: OpenDrain, args: tuple[Any, ...], count: int,
                   label: str) -> float:
    """Seconds from the common start to the last completion in any of ``count`` processes.

    Each spawned process enters ``open_drain(*args)``, waits on a common barrier, then
    calls the drain it yielded, and reports two ``time.perf_counter()`` readings: when
    the barrier let it go and its last completion. The start is the earliest release:
    this process may be scheduled after its children, which on a small machine can
    finish a short run before it looks at the clock. perf_counter is CLOCK_MONOTONIC on
    Linux, one clock for every process.
    """
    context = multiprocessing.get_context("spawn")
    start, finished = context.Barrier(count + 1), context.Queue()
    children = [context.Process(target=drain_in_child, args=(open_drain, args, start, finished))
                for _ in range(count)]
    for child in children:
        child.start()
    start.wait()
    reports = [finished.get(timeout=CHILD_TIMEOUT) for _ in children]
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"{label}: a worker process exited with code {child.exitcode}")
    released = min(began for began, _ in reports if began is not None)
    return max(last for _, last in reports if last is not None) - released


def drain_in_child(open_drain: OpenDrain, args: tuple[Any, ...], start: Barrier,
                   finished: Queue[tuple[float | None, float | None]]) -> None:
    """One worker process: open, wait for the common start, drain; report when the start
    let this process go and its last completion."""
    began = last = None
    try:
        with open_drain(*args) as drain:
            start.wait()
            began = time.perf_counter()
            last = drain()
    finally:  # a failed child still reports; the parent then sees its exit code
        finished.put((began, last))


@contextmanager
def system_drain(name: str, directory: str) -> Iterator[Drain]:
    """A system of ``harness.systems`` opened on ``directory``, drained by ``process_one``."""
    with closing(SYSTEMS[name](directory)) as system:

        def drain() -> float | None:
            last = None
            while system.process_one():
                last = time.perf_counter()
            return last

        yield drain


def in_processes(count: int) -> str:
    """The report's row of a drain by ``count`` worker processes."""
    return f"run, {count} worker process{'es' if count > 1 else ''}"


def drain_in_processes(name: str, directory: str, count: int) -> float:
    """Seconds from the common start to the last completion in any of ``count`` processes
    draining the queue of the system ``name`` in ``directory``."""
    return time_processes(system_drain, (name, directory), count, name)
