"""``@task`` and ``TaskWrapper``: a module-level function that can also become a Job
(GigQ's module path ``gigq_flow.decorators``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import TaskDefinitionError
from .job import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_RETRY_DELAY,
    DEFAULT_TIMEOUT,
    Job,
    check_importable,
)

if TYPE_CHECKING:
    from .job_queue import JobQueue

TASK_DEFAULTS: dict[str, Any] = {
    "priority": DEFAULT_PRIORITY,
    "max_attempts": DEFAULT_MAX_ATTEMPTS,
    "timeout": DEFAULT_TIMEOUT,
    "description": "",
    "retry_delay": DEFAULT_RETRY_DELAY,
    "serializer": "json",
}
TASK_OPTIONS = frozenset({"name", "cache", "cache_version", "tags", *TASK_DEFAULTS})
"""GigQ's options (with defaults: ``_options`` holds them all, as GigQ's does) and ours
(the cache's, tags), kept only when given."""


class TaskWrapper:
    """A function that stays directly callable and can also become a Job."""

    __wrapped__: Callable[..., Any]
    """The decorated function (set by ``functools.update_wrapper``)."""

    def __init__(self, fn: Callable, **options: Any) -> None:
        unknown = set(options) - TASK_OPTIONS
        if unknown:
            raise TaskDefinitionError(
                f"@task got unexpected option(s) {', '.join(sorted(unknown))}; "
                f"valid options: {', '.join(sorted(TASK_OPTIONS))}"
            )
        if isinstance(fn, TaskWrapper):
            raise TaskDefinitionError(f"@task was applied twice to {fn.name!r}; apply it once")
        check_importable(fn)
        if inspect.iscoroutinefunction(fn):
            raise TaskDefinitionError(
                f"{fn.__name__} is async; workers call plain functions. "
                "Wrap it in a function that calls asyncio.run()"
            )
        if inspect.isgeneratorfunction(fn):
            raise TaskDefinitionError(
                f"{fn.__name__} is a generator; a job must return its result. "
                "Return a list instead of yielding"
            )
        self._options: dict[str, Any] = {**TASK_DEFAULTS, "name": fn.__name__, **options}
        functools.update_wrapper(self, fn)
        self.to_job()  # validates the options now, not at first use

    @property
    def options(self) -> dict[str, Any]:
        """The Job options this task submits with (GigQ keeps them as ``_options``)."""
        return self._options

    @property
    def name(self) -> str:
        return self._options["name"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def to_job(self, **params: Any) -> Job:
        """A Job that calls this function with ``params``, not yet submitted."""
        return Job(function=self.__wrapped__, params=params, **self._options)

    def submit(self, queue: JobQueue, /, **params: Any) -> str:
        """Submit a job calling this function with ``params``; returns its id."""
        return queue.submit(self.to_job(**params))

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in sorted(self._options.items())
                          if key != "name")
        return (f"<TaskWrapper {self.name!r} {self.__module__}.{self.__wrapped__.__name__} "
                f"({shown})>")


def task(fn: Callable | None = None, **options: Any) -> Any:
    """Decorate a module-level function as a task, with or without options.

    ``@task`` or ``@task(name=..., priority=..., max_attempts=..., timeout=...,
    description=..., retry_delay=..., serializer=..., cache=..., cache_version=...)``.
    """
    if fn is not None:
        return TaskWrapper(fn, **options)
    return lambda f: TaskWrapper(f, **options)
