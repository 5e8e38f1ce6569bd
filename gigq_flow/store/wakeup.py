"""In-process wake-ups: threads waiting for work on one database file sleep on one condition."""

from __future__ import annotations

import threading

_registry_lock = threading.Lock()
_signals: dict[str, WakeSignal] = {}


class WakeSignal:
    """A generation counter and a condition. Writers bump it; idle threads wait for a bump."""

    def __init__(self) -> None:
        self.generation = 0
        self.condition = threading.Condition()

    def bump(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()

    def wait(self, since: int, timeout: float) -> bool:
        """Wait until the generation moves past ``since``; True when it has."""
        with self.condition:
            if self.generation == since:
                self.condition.wait(timeout)
            return self.generation != since


def signal_for(key: str) -> WakeSignal:
    """The one WakeSignal of this process for a database (by resolved path or URL)."""
    with _registry_lock:
        signal = _signals.get(key)
        if signal is None:
            signal = _signals[key] = WakeSignal()
        return signal
