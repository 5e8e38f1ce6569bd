"""The ``Job`` record a user submits (GigQ's module path ``gigq_flow.job``)."""

from __future__ import annotations

import inspect
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .checks import check_int, check_number
from .clock import now_iso
from .errors import ConfigurationError, TaskDefinitionError
from .serialization import SERIALIZERS
from .shipping import by_value_only

DEFAULT_PRIORITY = 0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT = 300
DEFAULT_RETRY_DELAY = 0
CACHE_USE = "use"
CACHE_RECOMPUTE = "recompute"
CACHE_NEVER = "never"
"""How a stored job uses the cache: its run's ``cache=True`` (``use``), ``"recompute"``,
or a step that opted out (``never``); NULL when its run's cache is off."""
DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
"""``package.module.function``: a function named by its import path."""


_id_lock = threading.Lock()
_last_ms = _sequence = 0


def new_id() -> str:
    """A job id: the text of a version 7 UUID (RFC 9562), time-ordered.

    48 bits of Unix milliseconds, then a 12-bit counter that keeps the ids of one process
    in order within a millisecond, then 62 random bits. Ids made one after the other sort
    together, so a large workflow's rows and edges go into the indexes keyed by id in
    order rather than at random pages: its submit writes 3x faster at 100,000 steps.
    """
    global _last_ms, _sequence
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _sequence = ms, 0
        else:  # the same millisecond (or a clock set back): count on from the last id
            _sequence += 1
            if _sequence > 0xFFF:
                _last_ms, _sequence = _last_ms + 1, 0
        stamp, sequence = _last_ms, _sequence
    digits = os.urandom(8).hex()
    variant = "89ab"[int(digits[0], 16) % 4]  # the two top bits: 10
    head = f"{stamp:012x}"
    return (f"{head[:8]}-{head[8:]}-7{sequence:03x}-{variant}{digits[1:4]}-"
            f"{digits[4:16]}")


def cache_mode(cache: bool | str) -> str | None:
    """The stored mode of a run's ``cache=`` argument: False (off), True or "recompute"."""
    if cache is False:
        return None
    if cache is True:
        return CACHE_USE
    if cache == CACHE_RECOMPUTE:
        return CACHE_RECOMPUTE
    raise ConfigurationError(
        f"cache must be False, True or 'recompute', got {cache!r}: True reuses earlier "
        "results, 'recompute' runs every step and refreshes what is stored"
    )


def check_importable(function: Callable) -> None:
    """Refuse what a worker could neither import by module and name nor receive by value
    (see :mod:`.shipping`): methods and objects without a name."""
    if not callable(function):
        raise TaskDefinitionError(
            f"expected a callable (a module-level function), got {type(function).__name__}; "
            "pass a module-level function"
        )
    name = getattr(function, "__name__", None)
    qualname = getattr(function, "__qualname__", name) or ""
    if name is None or getattr(function, "__module__", None) is None:
        raise TaskDefinitionError(
            f"{function!r} has no __module__/__name__; pass a module-level function"
        )
    if inspect.ismethod(function) or ("." in qualname and not by_value_only(function)):
        raise TaskDefinitionError(
            f"{qualname} is a method; a worker imports plain functions. "
            "Define a module-level function that calls it"
        )


def check_tags(job_name: str, tags: Iterable[str]) -> tuple[str, ...]:
    """A job's tags as stored: a tuple of distinct, non-empty, one-line strings."""
    if tags == ():  # the default
        return ()
    listed = None if isinstance(tags, str) or not isinstance(tags, Iterable) else list(tags)
    if listed is None or not all(
            isinstance(tag, str) and tag.strip() and "\n" not in tag for tag in listed):
        raise ConfigurationError(
            f"tags of job {job_name!r} must be a list of non-empty, one-line strings, "
            f"got {tags!r}"
        )
    return tuple(dict.fromkeys(listed))


class Job:
    """A unit of work: a module-level function and the keyword arguments to call it with.

    ``function`` is the function itself or its dotted import path
    (``"tasks.generate_report"``): the worker imports it by that path when the job runs.

    Dependencies are ids of jobs that must complete first. ``pass_parent_results``:
    None injects ``parent_results`` when the function accepts it (or ``**kwargs``),
    True always, False never. ``serializer`` is ``"json"`` (default) or ``"pickle"``.

    ``tags`` name kinds of work: ``JobQueue.set_limit(tag, n)`` lets at most n jobs
    carrying a tag run at once, across every worker of the queue.

    ``cache=False`` marks a step that always runs (side effects, randomness) even in a
    run with ``cache=True``; ``cache_version`` is part of the step's cache key: change it
    to invalidate earlier results by hand.
    """

    # A workflow of 100,000 steps holds 100,000 Jobs: slots, not a dict each.
    __slots__ = ("tags", "id", "name", "function", "params", "priority", "dependencies",
                 "max_attempts", "timeout", "description", "pass_parent_results",
                 "retry_delay", "serializer", "cache", "cache_version", "map_param",
                 "map_limit", "created_at")

    def __init__(
        self,
        name: str,
        function: Callable | str,
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
        cache: bool = True,
        cache_version: str | int | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"job name must be a non-empty string, got {name!r}")
        if isinstance(function, str):
            if not DOTTED_PATH.fullmatch(function):
                raise ConfigurationError(
                    f"function of job {name!r} must be a module-level function or its dotted "
                    f"import path ('package.module.function'), got {function!r}"
                )
        else:
            check_importable(getattr(function, "__wrapped__", function))
        if params is not None and not isinstance(params, dict):
            raise ConfigurationError(
                f"params of job {name!r} must be a dict of keyword arguments, "
                f"got {type(params).__name__}"
            )
        check_int(f"priority of job {name!r}", priority)
        check_int(f"max_attempts of job {name!r}", max_attempts, minimum=1)
        check_number(f"timeout of job {name!r}", timeout, inclusive=False,
                     kind="a number of seconds")
        check_number(f"retry_delay of job {name!r}", retry_delay, kind="a number of seconds")
        if pass_parent_results not in (None, True, False):
            raise ConfigurationError(
                f"pass_parent_results of job {name!r} must be None, True or False"
            )
        if serializer not in SERIALIZERS:
            raise ConfigurationError(
                f"serializer of job {name!r} must be one of {sorted(SERIALIZERS)}, "
                f"got {serializer!r}"
            )
        if not isinstance(cache, bool):
            raise ConfigurationError(
                f"cache of job {name!r} must be True or False (False: always run this "
                f"step), got {cache!r}"
            )
        if cache_version is not None and (
            isinstance(cache_version, bool) or not isinstance(cache_version, str | int)
        ):
            raise ConfigurationError(
                f"cache_version of job {name!r} must be a string or an integer, "
                f"got {cache_version!r}"
            )
        self.tags = check_tags(name, tags)
        self.id = new_id()
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
        self.cache = cache
        self.cache_version = None if cache_version is None else str(cache_version)
        self.map_param: str | None = None
        """Set by ``Workflow.map``: the job is a map, its items receive this parameter."""
        self.map_limit: int | None = None
        """A map's ``max_active``: how many of its items may run at once."""
        self.created_at = now_iso()

    @property
    def function_module(self) -> str:
        if isinstance(self.function, str):
            return self.function.rpartition(".")[0]
        return self.function.__module__

    @property
    def function_name(self) -> str:
        if isinstance(self.function, str):
            return self.function.rpartition(".")[2]
        if by_value_only(self.function):  # found by its code, never by name: say where
            return self.function.__qualname__
        return self.function.__name__

    def __repr__(self) -> str:
        return f"<Job {self.name!r} {self.function_module}.{self.function_name} id={self.id}>"
