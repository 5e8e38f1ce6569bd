"""Text the views share: durations, the first line of an error, counts per status."""

from __future__ import annotations

from collections.abc import Iterable

from ..job_status import JobStatus

TOOLTIP_MAX = 200
FONT = "Helvetica,Arial,sans-serif"
"""The font of every picture."""


def format_duration(seconds: float | None) -> str:
    """``0.42 s``, ``12.3 s``, ``3m 05s``, ``1h 02m``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def first_line(text: str | None, limit: int = TOOLTIP_MAX) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    for line in (text or "").strip().splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def counts_text(counts: Iterable[tuple[JobStatus, int]]) -> str:
    return " · ".join(f"{n} {status.value}" for status, n in counts)


def format_number(number: float) -> str:
    """``1``, ``1.5``: a number as DOT and CSS attributes take it."""
    return f"{number:g}"
