"""A fresh queue in a fresh temporary directory for every measurement."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any, TypeVar

TEMP_PREFIX = "gigq-bench-"

S = TypeVar("S", bound=Any)


@contextmanager
def fresh(system_class: Callable[[str], S]) -> Iterator[tuple[str, S]]:
    """Yield a new temporary directory and a system opened on it; both go at exit."""
    with (
        tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as directory,
        closing(system_class(directory)) as system,
    ):
        yield directory, system
