"""Timing worker processes that start together: the harness of every multi-process scenario."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any, Callable

CHILD_TIMEOUT = 600.0


def time_processes(target: Callable[..., None], args: tuple[Any, ...], count: int,
                   label: str) -> float:
    """Seconds from the common start to the last completion in any of ``count`` processes.

    Each spawned process runs ``target(*args, start, finished)``: it waits on the ``start``
    barrier, works, and puts the ``time.perf_counter()`` of its last completion (or None)
    on ``finished``. perf_counter is CLOCK_MONOTONIC on Linux, one clock for every process.
    """
    context = multiprocessing.get_context("spawn")
    start, finished = context.Barrier(count + 1), context.Queue()
    children = [context.Process(target=target, args=(*args, start, finished))
                for _ in range(count)]
    for child in children:
        child.start()
    start.wait()
    began = time.perf_counter()
    lasts = [finished.get(timeout=CHILD_TIMEOUT) for _ in children]
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"{label}: a worker process exited with code {child.exitcode}")
    return max(last for last in lasts if last is not None) - began
