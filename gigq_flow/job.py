"""The ``Job`` record a user submits and the ``JobStatus`` enum."""

from __future__ import annotations

import inspect
import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Callable

from .errors import ConfigurationError, TaskDefinitionError
from .serialization import SERIALIZERS

DEFAULT_PRIORITY = 0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT = 300
DEFAULT_RETRY_DELAY = 0


class JobStatus(str, Enum):
    """Where a job is in its life. Terminal states stay put unless requeued."""

    PENDING = "pending"
    """Waiting for a worker, for its parents, or for its retry delay."""
    RUNNING = "running"
    """Claimed by a worker; an execution row records the attempt."""
    COMPLETED = "completed"
    """Finished and its result stored."""
    FAILED = "failed"
    """Raised on its last attempt."""
    CANCELLED = "cancelled"
    """Cancelled while pending."""
    TIMEOUT = "timeout"
    """Ran past its timeout on its last attempt."""
    UPSTREAM_FAILED = "upstream_failed"
    """Will never run: a job it depends on ended failed, timed out or cancelled."""

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self not in (JobStatus.PENDING, JobStatus.RUNNING)


FINAL_FAILURES = (JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.CANCELLED)


def check_importable(function: Callable) -> None:
    """Refuse functions a worker could not import by module and name."""
    if not callable(function):
        raise TaskDefinitionError(
            f"expected a function, got {type(function).__name__}; pass a module-level function"
        )
    name = getattr(function, "__name__", None)
    qualname = getattr(function, "__qualname__", name) or ""
    if name is None or getattr(function, "__module__", None) is None:
        raise TaskDefinitionError(
            f"{function!r} has no __module__/__name__; pass a module-level function"
        )
    if name == "<lambda>":
        raise TaskDefinitionError(
            "lambdas cannot be jobs: a worker imports functions by module and name; "
            "define a named function at module level"
        )
    if "<locals>" in qualname:
        raise TaskDefinitionError(
            f"{qualname} is a closure or nested function; a worker cannot import it. "
            "Define it at module level"
        )
    if "." in qualname or inspect.ismethod(function):
        raise TaskDefinitionError(
            f"{qualname} is a method; a worker imports plain functions. "
            "Define a module-level function that calls it"
        )


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigurationError(f"{name} must be a number >= {minimum}, got {value!r}")


class Job:
    """A unit of work: a module-level function and the keyword arguments to call it with.

    Dependencies are ids of jobs that must complete first. ``pass_parent_results``:
    None injects ``parent_results`` when the function accepts it (or ``**kwargs``),
    True always, False never. ``serializer`` is ``"json"`` (default) or ``"pickle"``.
    """

    def __init__(
        self,
        name: str,
        function: Callable,
        params: dict[str, Any] | None = None,
        priority: int = DEFAULT_PRIORITY,
        dependencies: list[str] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: int = DEFAULT_TIMEOUT,
        description: str = "",
        pass_parent_results: bool | None = None,
        retry_delay: int = DEFAULT_RETRY_DELAY,
        *,
        serializer: str = "json",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"job name must be a non-empty string, got {name!r}")
        check_importable(getattr(function, "__wrapped__", function))
        if params is not None and not isinstance(params, dict):
            raise ConfigurationError(
                f"params of job {name!r} must be a dict of keyword arguments, "
                f"got {type(params).__name__}"
            )
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigurationError(f"priority of job {name!r} must be an int, got {priority!r}")
        _check_int(f"max_attempts of job {name!r}", max_attempts, 1)
        _check_int(f"timeout of job {name!r}", timeout, 0)
        if timeout <= 0:
            raise ConfigurationError(f"timeout of job {name!r} must be > 0 seconds, got {timeout!r}")
        _check_int(f"retry_delay of job {name!r}", retry_delay, 0)
        if pass_parent_results not in (None, True, False):
            raise ConfigurationError(
                f"pass_parent_results of job {name!r} must be None, True or False"
            )
        if serializer not in SERIALIZERS:
            raise ConfigurationError(
                f"serializer of job {name!r} must be one of {sorted(SERIALIZERS)}, "
                f"got {serializer!r}"
            )
        self.id = str(uuid.uuid4())
        self.name = name
        self.function = function
        self.params = dict(params or {})
        self.priority = priority
        self.dependencies = list(dependencies or [])
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.description = description
        self.pass_parent_results = pass_parent_results
        self.retry_delay = retry_delay
        self.serializer = serializer
        self.created_at = datetime.now().isoformat()

    @property
    def function_module(self) -> str:
        return self.function.__module__

    @property
    def function_name(self) -> str:
        return self.function.__name__

    def __repr__(self) -> str:
        return f"<Job {self.name!r} {self.function_module}.{self.function_name} id={self.id}>"
