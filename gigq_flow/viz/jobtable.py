"""The live panel's table of jobs as HTML: a row per job (name, status in its colour,
attempts, start, duration, worker, error line), each row selectable by a click."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime

from ..snapshot import JobState
from .stepout import PICK_ATTRIBUTE
from .styles import Style, StyleKey, look_of
from .text import first_line, format_duration
from .view import reused, status_label

ERROR_TITLE_MAX = 2000
"""The error cell's tooltip shows at most this many characters of the error."""
ERROR_LINE_MAX = 120
COLUMNS = ("name", "status", "attempts", "started", "duration", "worker", "error")
_CELL = "padding:2px 8px;border-bottom:1px solid #e5e5e5;text-align:left;white-space:nowrap"
# the error cell wraps, so that a long error line stays readable without scrolling
_ERROR_CELL = ("padding:2px 8px;border-bottom:1px solid #e5e5e5;text-align:left;"
               "white-space:normal;min-width:16em;max-width:40em;color:#8a1c12")
_SELECTED_ROW = "background:#fff4cc"


def clock(iso: str | None) -> str:
    """A stored timestamp as the table shows it: the time of day, with the date when
    it is not today."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso)
    if moment.date() == datetime.now().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def job_row(job: JobState, styles: Mapping[StyleKey, Style], worker: str,
            selected: bool) -> str:
    """The row of one job; ``selected`` marks the step whose output the panel shows."""
    style = styles[look_of(job.status, reused(job))]
    error = job.error or ""
    source = job.cached_from if reused(job) else None
    hint = f' title="result of job {html.escape(source)}"' if source else ""
    cells = (
        html.escape(job.name),
        (f'<span{hint} style="{style.css()};padding:0 4px;border-radius:3px">'
         f"{html.escape(style.symbol)} {html.escape(status_label(job))}</span>"),
        f"{job.attempts}/{job.max_attempts}",
        clock(job.started_at),
        format_duration(job.duration),
        html.escape(worker),
    )
    tds = "".join(f'<td style="{_CELL}">{cell}</td>' for cell in cells)
    tds += (f'<td class="gigq-flow-error-line" style="{_ERROR_CELL}" '
            f'title="{html.escape(error[:ERROR_TITLE_MAX])}">'
            f"{html.escape(first_line(error, ERROR_LINE_MAX))}</td>")
    cached = f' data-cached="{html.escape(source)}"' if source else ""
    mark = f' aria-selected="true" style="cursor:pointer;{_SELECTED_ROW}"' if selected else \
        ' style="cursor:pointer"'
    return (f'<tr data-job="{job.id}" data-status="{job.status.value}"{cached}{mark} '
            f'title="click to see its output">{tds}</tr>')


def job_table(rows: Iterable[str]) -> str:
    """The table around ``rows``, in a scrolling box whose clicks select a step."""
    header = "".join(f'<th style="{_CELL}">{column}</th>' for column in COLUMNS)
    return (
        f'<div style="max-height:320px;overflow:auto"{PICK_ATTRIBUTE}>'
        '<table class="gigq-flow-jobs" style="border-collapse:collapse;font-size:12px">'
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
