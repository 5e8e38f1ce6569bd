"""A fresh temporary directory, and a fresh queue in one, for every measurement."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any, TypeVar

TEMP_PREFIX = "gigq-bench-"
"""Every benchmark directory's name starts so: one left behind by a killed run is easy to find."""

S = TypeVar("S", bound=Any)


def temporary_directory() -> tempfile.TemporaryDirectory[str]:
    """A new temporary directory, removed when its ``with`` block ends."""
    return tempfile.TemporaryDirectory(prefix=TEMP_PREFIX)


@contextmanager
def fresh(system_class: Callable[[str], S]) -> Iterator[tuple[str, S]]:
    """Yield a new temporary directory and a system opened on it; both go at exit."""
    with temporary_directory() as directory, closing(system_class(directory)) as system:
        yield directory, system
