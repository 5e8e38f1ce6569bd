"""Module-level job functions for the visualization tests (workers import them by name).

Coordination with the test thread goes through process-wide named events: a job
waits on ``<key>:release`` and sets ``<key>:started`` when it begins.
"""

from __future__ import annotations

import threading

_events: dict[str, threading.Event] = {}
_lock = threading.Lock()
_calls: dict[str, int] = {}


def event(key: str) -> threading.Event:
    with _lock:
        if key not in _events:
            _events[key] = threading.Event()
        return _events[key]


def ok(value=None):
    return value


def fail(message="boom"):
    raise ValueError(message)


def flaky(key):
    """Fails on its first call for ``key``, then succeeds."""
    with _lock:
        _calls[key] = _calls.get(key, 0) + 1
        count = _calls[key]
    if count == 1:
        raise RuntimeError(f"first attempt of {key} fails")
    return count


def gate(key, limit=30.0):
    """Signal ``<key>:started`` and block until ``<key>:release`` (or ``limit`` s)."""
    event(f"{key}:started").set()
    if not event(f"{key}:release").wait(limit):
        raise RuntimeError(f"{key} was never released")
    return key
