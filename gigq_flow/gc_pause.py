"""Holding off Python's cyclic garbage collector around bulk work on a large run."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off the cyclic collector while a block builds objects that are not garbage.

    Each full collection that the block's allocations would trigger scans every object of
    the process (the jobs of a 100,000-step workflow are hundreds of thousands): a
    submission or a picture of such a run set off two or three, a third of a picture's
    time. Pauses of several threads nest; the collector resumes when the last ends,
    unless it was off before the first began.
    """
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
