"""Timing worker processes that start together: the harness of every multi-process scenario."""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable

CHILD_TIMEOUT = 600.0


def time_processes(target: Callable[..., None], args: tuple[Any, ...], count: int,
                   label: str) -> float:
    """Seconds from the common start to the last completion in any of ``count`` processes.

    Each spawned process runs ``target(*args, start, finished)``: it waits on the ``start``
    barrier, works, and puts ``(began, last)`` on ``finished``: the ``time.perf_counter()``
    at which the barrier let it go and that of its last completion (None if it completed
    nothing). The start is the earliest ``began``: this process may be scheduled after its
    children, which on a small machine can finish a short run before it looks at the
    clock. perf_counter is CLOCK_MONOTONIC on Linux, one clock for every process.
    """
    context = multiprocessing.get_context("spawn")
    start, finished = context.Barrier(count + 1), context.Queue()
    children = [context.Process(target=target, args=(*args, start, finished))
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
