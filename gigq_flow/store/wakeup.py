"""In-process wake-ups: threads waiting for work on one database file sleep on one condition."""

from __future__ import annotations

import itertools
import threading

_registry_lock = threading.Lock()
_signals: dict[str, WakeSignal] = {}


class WakeSignal:
    """A generation counter and a condition. Writers bump it; idle threads wait for a bump.

    A bump takes the condition's lock only when a thread waits: a waiter counts itself
    before it reads the generation and a bump moves the generation before it reads the
    count, so either the waiter sees the new generation or the bump sees the waiter.
    Each bump sets a value never used before, so concurrent bumps cannot cancel out."""

    def __init__(self) -> None:
        self.generation = 0
        self.waiting = 0
        self.condition = threading.Condition()
        self._values = itertools.count(1)

    def bump(self) -> None:
        self.generation = next(self._values)
        if self.waiting:
            with self.condition:
                self.condition.notify_all()

    def wait(self, since: int, timeout: float) -> bool:
        """Wait until the generation moves past ``since``; True when it has."""
        with self.condition:
            self.waiting += 1
            try:
                if self.generation == since:
                    self.condition.wait(timeout)
                return self.generation != since
            finally:
                self.waiting -= 1


def signal_for(key: str) -> WakeSignal:
    """The one WakeSignal of this process for a database (by resolved path or URL)."""
    with _registry_lock:
        signal = _signals.get(key)
        if signal is None:
            signal = _signals[key] = WakeSignal()
        return signal
