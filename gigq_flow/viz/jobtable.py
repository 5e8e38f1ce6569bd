"""The live panel's table of jobs as HTML: a row per job (name, status in its colour,
attempts, start, duration, worker, error line), each row selectable by a click.

A map is one row with its items' progress; its items are listed under it (at most
:data:`MAP_ROWS_SHOWN`) only while the map or one of its items is selected, so a map of
ten thousand items costs the table one row.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from ..job_status import JobStatus
from ..snapshot import Attempt, JobState, RunSnapshot
from .maps import head, progress_of
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
_ITEM_NAME = "padding-left:1.5em"
MAP_ROWS_SHOWN = 50
"""Rows of items listed under a selected map: the failed ones first, then the running
ones, then the rest in input order (and the selected item, wherever it is)."""
MAX_ROWS = 200
"""Rows of jobs listed at most: past it the failed and running ones and the selected one,
then the first in submission order, and a row saying how many more there are."""
_NOTABLE = frozenset({JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.RUNNING})
# the order in which a selected map lists its items
_ITEM_ORDER = {JobStatus.FAILED: 0, JobStatus.TIMEOUT: 0, JobStatus.RUNNING: 1}


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
    """The row of one job; ``selected`` marks the step whose output the panel shows.
    A map's item is indented under its map."""
    style = styles[look_of(job.status, reused(job))]
    error = job.error or ""
    source = job.cached_from if reused(job) else None
    hint = f' title="result of job {html.escape(source)}"' if source else ""
    name = html.escape(job.name)
    cells = (
        f'<span style="{_ITEM_NAME}">{name}</span>' if job.map_of is not None else name,
        (f'<span{hint} style="{style.css()};padding:0 4px;border-radius:3px">'
         f"{html.escape(style.symbol)} {html.escape(status_label(job))}</span>"),
        f"{job.attempts}/{job.max_attempts}",
        clock(job.started_at),
        format_duration(job.duration),
        html.escape(worker),
    )
    cached = f' data-cached="{html.escape(source)}"' if source else ""
    return _tr(job.id, job.status, cells, error, selected, cached, "click to see its output")


def map_row(job: JobState, items: Sequence[JobState], styles: Mapping[StyleKey, Style],
            selected: bool, expanded: bool) -> str:
    """The row of a map: ``▸ square ×120 · 37 done, 2 failed`` in the map's look
    (running while items run), the first error among it and its items."""
    progress = progress_of(job, items)
    status = progress.status
    style = styles[look_of(status, reused(job))]
    counted = f" · {progress.text()}" if progress.size else ""
    cells = (
        f"{'▾' if expanded else '▸'} {html.escape(head(job.name, progress.size) + counted)}",
        (f'<span style="{style.css()};padding:0 4px;border-radius:3px">'
         f"{html.escape(style.symbol)} {html.escape(status.value)}</span>"),
        f"{job.attempts}/{job.max_attempts}",
        clock(job.started_at),
        format_duration(job.duration) if job.status.is_terminal else "",
        "",
    )
    return _tr(job.id, status, cells, progress.error, selected, ' data-map="true"',
               "click to list its items" if not expanded else "its items are listed below")


def _tr(job_id: str, status: JobStatus, cells: Iterable[str], error: str, selected: bool,
        extra: str, title: str) -> str:
    tds = "".join(f'<td style="{_CELL}">{cell}</td>' for cell in cells)
    tds += (f'<td class="gigq-flow-error-line" style="{_ERROR_CELL}" '
            f'title="{html.escape(error[:ERROR_TITLE_MAX])}">'
            f"{html.escape(first_line(error, ERROR_LINE_MAX))}</td>")
    mark = f' aria-selected="true" style="cursor:pointer;{_SELECTED_ROW}"' if selected else \
        ' style="cursor:pointer"'
    return (f'<tr data-job="{job_id}" data-status="{status.value}"{extra}{mark} '
            f'title="{title}">{tds}</tr>')


def more_row(hidden: int, name: str | None = None) -> str:
    """The row that says how many jobs (items of the selected map ``name``) are not listed."""
    text = (f"… {hidden} more items of {name} (select one by name, e.g. "
            f"panel.select('{name}[0]'))" if name is not None else
            f"… {hidden} more jobs (select one by name or id: panel.select(...))")
    cells = [f'<i style="{_ITEM_NAME};color:#666">{html.escape(text)}</i>'] + [""] * 6
    tds = "".join(f'<td style="{_CELL}">{cell}</td>' for cell in cells)
    return f'<tr class="gigq-flow-more">{tds}</tr>'


def job_table(rows: Iterable[str]) -> str:
    """The table around ``rows``, in a scrolling box whose clicks select a step."""
    header = "".join(f'<th style="{_CELL}">{column}</th>' for column in COLUMNS)
    return (
        f'<div style="max-height:320px;overflow:auto"{PICK_ATTRIBUTE}>'
        '<table class="gigq-flow-jobs" style="border-collapse:collapse;font-size:12px">'
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


class JobTable:
    """The panel's table as it stands: a row per job, rebuilt only when the job (for a
    map: one of its items) changed or the selection moved; the items of a map listed
    under it while it or one of its items is selected.

    ``read_attempts`` is read only when a finished job's worker is not known yet.
    """

    def __init__(self, styles: Mapping[StyleKey, Style],
                 read_attempts: Callable[[], list[Attempt]]) -> None:
        self.styles = styles
        self._read_attempts = read_attempts
        self._rows: dict[str, str] = {}
        self._workers: dict[str, str] = {}
        self._selected: str | None = None
        self._expanded: str | None = None
        self._seen = -1
        self._top: list[str] = []
        """The ids of the rows a table of every job lists (a map's items are not)."""
        self._notable: set[str] = set()
        """Failed, timed out and running jobs: listed first past MAX_ROWS."""

    def html(self, snapshot: RunSnapshot, dirty: set[str], selected: str | None) -> str:
        """The table's HTML; ``dirty`` are the jobs whose rows may have changed."""
        chosen = snapshot.job(selected) if selected is not None else None
        expanded = chosen.map_of if chosen is not None and chosen.map_of else (
            selected if chosen is not None and chosen.is_map else None)
        if (selected, expanded) != (self._selected, self._expanded):
            for moved in (self._selected, selected, self._expanded, expanded):
                self._rows.pop(moved or "", None)
            if expanded != self._expanded and expanded is not None:  # now listed
                dirty = dirty | {item.id for item in snapshot.items_of.get(expanded, ())}
            self._selected, self._expanded = selected, expanded
        for job_id in dirty:  # and the map of a changed item: its counts changed
            self._rows.pop(job_id, None)
            job = snapshot.job(job_id)
            self._rows.pop(job.map_of if job is not None and job.map_of else "", None)
        listed, hidden = self._listed(snapshot, dirty, selected)
        self._learn_workers(snapshot, dirty | set(listed), expanded)
        rows = []
        for job_id in listed:
            job = snapshot.job(job_id)
            assert job is not None
            if job.id not in self._rows:
                self._rows[job.id] = self._row(job, snapshot.items_of.get(job.id, ()))
            rows.append(self._rows[job.id])
            if job.id == expanded:
                rows.extend(self._item_rows(job, snapshot.items_of.get(job.id, ())))
        if hidden:
            rows.append(more_row(hidden))
        return job_table(rows)

    def _listed(self, snapshot: RunSnapshot, dirty: set[str],
                selected: str | None) -> tuple[list[str], int]:
        """The rows listed (ids in submission order) and how many are left out: every
        row up to :data:`MAX_ROWS`; past it the failed and running ones and the selected
        one first, then the first in submission order."""
        if len(snapshot.jobs) != self._seen:  # new jobs: a map's items (listed under it)
            self._seen = len(snapshot.jobs)
            self._top = [job.id for job in snapshot.jobs
                         if job.map_of is None or snapshot.job(job.map_of) is None]
            self._notable = {job.id for job in snapshot.jobs if job.status in _NOTABLE}
        else:
            for job_id in dirty:
                job = snapshot.job(job_id)
                if job is not None and job.status in _NOTABLE:
                    self._notable.add(job_id)
                else:
                    self._notable.discard(job_id)
        if len(self._top) <= MAX_ROWS:
            return self._top, 0
        first = {job_id for job_id in self._notable
                 if getattr(snapshot.job(job_id), "map_of", None) is None}
        chosen = self._selected if self._expanded is None else self._expanded
        if chosen is not None:
            first.add(chosen)
        order = snapshot.position
        picked = sorted(first, key=order)[:MAX_ROWS]
        rest = (job_id for job_id in self._top if job_id not in first)
        picked.extend(next(rest) for _ in range(MAX_ROWS - len(picked)))
        return sorted(picked, key=order), len(self._top) - len(picked)

    def _row(self, job: JobState, items: Sequence[JobState]) -> str:
        if job.is_map:
            return map_row(job, items, self.styles, job.id == self._selected,
                           job.id == self._expanded)
        return job_row(job, self.styles, self._workers.get(job.id, ""),
                       job.id == self._selected)

    def _item_rows(self, job: JobState, items: Sequence[JobState]) -> list[str]:
        listed = sorted(items, key=lambda item: (_ITEM_ORDER.get(item.status, 2),
                                                 item.map_index or 0))[:MAP_ROWS_SHOWN]
        if self._selected not in {item.id for item in listed}:
            listed += [item for item in items if item.id == self._selected]
        rows = []
        for item in listed:
            if item.id not in self._rows:
                self._rows[item.id] = self._row(item, ())
            rows.append(self._rows[item.id])
        if len(items) > len(listed):
            rows.append(more_row(len(items) - len(listed), job.name))
        return rows

    def _learn_workers(self, snapshot: RunSnapshot, dirty: set[str],
                       expanded: str | None) -> None:
        """The worker of a changed or listed job's last attempt: seen while running, else from its
        executions (read only when a finished job's worker is not known yet; never for
        the items of a map that is not listed)."""
        missing = False
        for job in filter(None, map(snapshot.job, dirty)):
            if job.worker_id:
                self._workers[job.id] = job.worker_id
            elif (job.id in dirty and job.attempts and job.id not in self._workers
                  and job.map_of in (None, expanded)):
                missing = True
        if missing:
            for attempt in self._read_attempts():
                if attempt.worker:
                    self._workers[attempt.job_id] = attempt.worker
