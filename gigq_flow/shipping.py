"""Steps shipped by value: functions another process cannot import by module and name.

A function defined in ``__main__`` (a notebook's cells, a script), a closure or a lambda
exists only in the process that defined it. When such a step is submitted, its function
is pickled with cloudpickle (code, defaults and the globals it reads) and stored once
by digest with the job. Unpickling runs code chosen by whoever wrote the database, so
only two kinds of worker run it: a worker in the process that shipped it (which keeps
the function object itself, see :func:`shipped_here`) and one started with
``allow_pickle=True``.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from collections.abc import Callable
from typing import NamedTuple

from .errors import TaskDefinitionError

logger = logging.getLogger(__name__)

_shipped: dict[str, tuple[Callable, bytes]] = {}
"""The functions this process shipped and their code, by the digest of the code."""
_lock = threading.Lock()


class Shipped(NamedTuple):
    """A function's code, pickled by value, and its digest."""

    digest: str
    code: bytes


def local_only(func: Callable) -> bool:
    """True for a function only this process can find: defined in ``__main__``, a
    closure or a lambda."""
    qualname = getattr(func, "__qualname__", "") or ""
    return (getattr(func, "__module__", None) == "__main__" or "<locals>" in qualname
            or getattr(func, "__name__", None) == "<lambda>")


def by_value_only(func: Callable) -> bool:
    """True for a closure or a lambda: its name finds nothing even in its own module."""
    qualname = getattr(func, "__qualname__", "") or ""
    return "<locals>" in qualname or getattr(func, "__name__", None) == "<lambda>"


def ship(func: Callable) -> Shipped | None:
    """Pickle ``func`` by value and remember it as shipped by this process. None when a
    ``__main__`` function cannot be pickled (it still runs by name in this process);
    a closure or lambda that cannot be pickled raises TaskDefinitionError."""
    import cloudpickle  # imported on first use: most queues never ship a function

    try:
        code = cloudpickle.dumps(func, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        if by_value_only(func):
            raise TaskDefinitionError(
                f"{func.__qualname__} cannot be pickled by value ({type(exc).__name__}: "
                f"{exc}); define it at module level, or keep what it reads picklable"
            ) from exc
        logger.debug("%s stays in this process: cannot pickle it (%s)", func.__qualname__, exc)
        return None
    digest = hashlib.sha256(code).hexdigest()
    with _lock:
        _shipped[digest] = (func, code)
    return Shipped(digest, code)


def shipped_here(digest: str) -> Callable | None:
    """The function this process shipped under ``digest``, or None."""
    found = _shipped.get(digest)
    return None if found is None else found[0]


def shipped_code(digest: str) -> bytes | None:
    """The code this process shipped under ``digest``, or None."""
    found = _shipped.get(digest)
    return None if found is None else found[1]


def load(code: bytes) -> Callable:
    """A function from its shipped code (runs the code: trusted databases only)."""
    return pickle.loads(code)  # noqa: S301 - the caller checked the worker's trust
