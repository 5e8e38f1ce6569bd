"""Module-level job functions for the CLI tests.

``gigq-flow submit clifuncs.add ...`` imports them in the CLI process, and worker
subprocesses import them by name: the tests put ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import time

from gigq_flow import task

NOT_A_FUNCTION = 42
lambda_fn = lambda: None  # noqa: E731 - a job cannot be a lambda; submit must say so


def add(a, b):
    return a + b


def echo(**params):
    return params


def fail(message="planned failure"):
    raise RuntimeError(message)


def nap(seconds, value=None):
    time.sleep(seconds)
    return value


def total(parent_results):
    return sum(value for value in parent_results.values() if isinstance(value, (int, float)))


class Canary:
    """Pickled, it creates ``path`` when unpickled: proof that something unpickled it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@task(name="tagged", priority=7, max_attempts=5, description="from @task")
def tagged(x=1):
    return x * 10
