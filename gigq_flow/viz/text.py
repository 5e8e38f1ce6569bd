"""Text the views share: durations, the first line of an error, counts per status, short ids."""

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


SHORT_ID = 8
"""Characters of a job id shown where the whole id would crowd the text."""


def counts_text(counts: Iterable[tuple[JobStatus, int]], cached: int = 0) -> str:
    """``12 completed (10 cached) · 1 failed``: the ``cached`` completed jobs reused an
    earlier result (as ``RunSnapshot.summary()`` says it)."""
    return " · ".join(
        f"{n} {status.value}"
        + (f" ({cached} cached)" if cached and status is JobStatus.COMPLETED else "")
        for status, n in counts)


def short_id(job_id: str) -> str:
    """The first characters of a job id, as a tooltip shows it."""
    return job_id[:SHORT_ID]


def format_number(number: float) -> str:
    """``1``, ``1.5``: a number as DOT and CSS attributes take it."""
    return f"{number:g}"
