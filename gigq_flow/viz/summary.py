"""The live panel's summary: a progress bar (finished of total) coloured by how the run
goes, and a count per status in its colour (and of the reused results, once there is
one)."""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..job_status import JobStatus
from ..snapshot import RunSnapshot
from .styles import CACHED, Style, StyleKey, style_key

_FAILURES = (JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.UPSTREAM_FAILED)
_CACHED_TITLE = "completed jobs that reused an earlier result (also counted in completed)"


class RunSummary:
    """The summary's widgets, and their update from a snapshot."""

    def __init__(self, styles: dict[StyleKey, Style]) -> None:
        self.styles = styles
        self.progress = widgets.IntProgress(min=0, max=1, value=0, bar_style="info",
                                            layout=widgets.Layout(width="60%"))
        self.progress_text = widgets.HTML()
        self.count_labels: dict[str, widgets.HTML] = {}
        """A chip per status, and one for reused results after ``completed`` (shown
        once the run has one: they are counted in ``completed`` too)."""
        for status in JobStatus:
            self.count_labels[status.value] = widgets.HTML()
            if status is JobStatus.COMPLETED:
                self.count_labels[CACHED.value] = widgets.HTML(
                    layout=widgets.Layout(display="none"))

    def update(self, snapshot: RunSnapshot) -> None:
        counts = snapshot.counts
        self.progress.max = max(snapshot.total, 1)
        self.progress.value = snapshot.finished
        if any(counts[s.value] for s in _FAILURES):
            self.progress.bar_style = "danger"
        elif counts[JobStatus.CANCELLED.value]:
            self.progress.bar_style = "warning"
        elif snapshot.done:
            self.progress.bar_style = "success"
        else:
            self.progress.bar_style = "info"
        self.progress_text.value = f"{snapshot.finished} / {snapshot.total} finished"
        for status in JobStatus:
            self.count_labels[status.value].value = self._chip(status.value,
                                                               counts[status.value])
        cached = snapshot.cached
        self.count_labels[CACHED.value].value = self._chip(CACHED.value, cached, _CACHED_TITLE)
        self.count_labels[CACHED.value].layout.display = "" if cached else "none"

    def _chip(self, key: str, count: int, title: str = "") -> str:
        style = self.styles[style_key(key)]
        hint = f' title="{html.escape(title)}"' if title else ""
        return (f'<span class="gigq-flow-count {key}"{hint} style="{style.css()};'
                f'padding:1px 6px;margin-right:4px;border-radius:3px;font-size:12px">'
                f"{html.escape(style.symbol)} {key} <b>{count}</b></span>")
