"""Timestamps as the queue stores them: local ISO 8601 text, as GigQ writes them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

_formatted_second: tuple[int, str] = (0, "")


def now_iso() -> str:
    """Local time as ``datetime.now().isoformat(timespec="microseconds")`` writes it, in
    half its time: the date and time to the second are formatted once a second."""
    global _formatted_second
    clock = time.time()
    second = int(clock)
    formatted_at, formatted = _formatted_second
    if second != formatted_at:
        formatted = datetime.fromtimestamp(second).isoformat()
        _formatted_second = (second, formatted)
    return "%s.%06d" % (formatted, (clock - second) * 1e6)  # noqa: UP031 - faster; %d truncates, as isoformat


def later_iso(seconds: float) -> str | None:
    """``seconds`` from now (None for no delay): when a delayed retry becomes ready."""
    if not seconds:
        return None
    return (datetime.now() + timedelta(seconds=seconds)).isoformat(timespec="microseconds")
