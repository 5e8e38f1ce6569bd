"""The jobs every system runs: module-level functions that workers in any process can import."""

import time


def noop() -> None:
    """Do nothing, so that a benchmark measures the queue and not the job."""


def noop_after(*parents: object) -> None:
    """Do nothing with the parents' results: a no-op step of Dask's and Prefect's DAGs,
    which pass them as arguments."""


def nap(seconds: float) -> None:
    """Sleep, standing in for a job that takes ``seconds`` of work (the fan-out scenario)."""
    time.sleep(seconds)


def spin(seconds: float) -> None:
    """Keep a CPU busy for ``seconds``, standing in for a job that computes."""
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        pass


def crunch(loops: int) -> int:
    """Pure-Python CPU work: ``loops`` turns of an integer loop that holds the GIL
    throughout (no sleep, no C call that releases it); returns what it computed."""
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def numbered(index: int, seconds: float = 0.0) -> int:
    """One step of a DAG, told apart from every other by ``index``: its params, hence its
    cache key, are its own (steps with the same function, params and parents share a key,
    and a cached run would reuse one step's result for the next). Sleeps ``seconds``, if
    any, and returns ``index``."""
    if seconds:
        time.sleep(seconds)
    return index


def print_lines(lines: int, width: int) -> int:
    """Print ``lines`` lines of ``width`` characters (a step that talks a lot)."""
    for i in range(lines):
        print(f"{i:>{width}}")
    return lines


def numbers(n: int) -> list[int]:
    """0 .. n-1: the list a map maps over."""
    return list(range(n))


def item_noop(item: int) -> None:
    """A map's item that does nothing."""
