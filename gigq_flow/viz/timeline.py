"""``run.timeline()``: a Gantt picture of every attempt (start, end, worker, status).

The chart is DOT with pinned positions (the ``nop2`` engine), so it renders through the
same renderers as the DAG, to svg, png or pdf. Rows are jobs (``by="job"``) or
workers (``by="worker"``); a bar is one attempt in its status's style, and its
tooltip gives the job, attempt, worker, times and error. Running attempts end at
"now". A job that reused an earlier result was claimed and completed at once: its
last attempt is a bar of no length in the ``cached`` style, marked "cached" beside it
when rows are jobs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..checks import check_number
from ..errors import ConfigurationError
from ..job_status import JobStatus
from ..snapshot import Attempt, RunSnapshot
from .render import Picture
from .styles import CACHED, Style, StyleKey, StyleOverrides, get_styles
from .text import FONT, first_line, format_duration, short_id

ROW_HEIGHT = 20.0
BAR_HEIGHT = 13.0
DEFAULT_WIDTH = 720.0
LABEL_CHAR_WIDTH = 6.0
LABEL_MAX = 220.0
AXIS_TICKS = 6
CACHED_MARK_WIDTH = 34.0
"""Points beside a reused result's bar for the word "cached"."""
# Execution states that are not job states look like the job state they resemble.
_EXECUTION_LOOKS = {"lost": JobStatus.FAILED, "interrupted": JobStatus.CANCELLED}


def _look(status: str, palette: dict[StyleKey, Style]) -> Style:
    try:
        return palette[JobStatus(status)]
    except ValueError:
        return palette[_EXECUTION_LOOKS.get(status, JobStatus.PENDING)]


def _reused_attempts(snapshot: RunSnapshot, found: Sequence[Attempt]) -> dict[str, str]:
    """Attempt id -> the job whose result it reused: the last attempt of each completed
    job that reused an earlier result."""
    sources = {job.id: job.cached_from for job in snapshot.jobs
               if job.cached_from and job.status is JobStatus.COMPLETED}
    last: dict[str, Attempt] = {}
    for attempt in found:
        if attempt.job_id in sources and (
                attempt.job_id not in last or attempt.number > last[attempt.job_id].number):
            last[attempt.job_id] = attempt
    return {attempt.id: sources[job_id] for job_id, attempt in last.items()}


def _tick_step(span: float) -> float:
    raw = span / AXIS_TICKS
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _hms(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3]


def _text(text: str) -> str:
    """Literal text for a DOT label (backslashes are escapes there)."""
    return text.replace("\\", "\\\\")


def _q(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _node(key: str, label: str, **attrs: Any) -> str:
    body = " ".join(f"{name}={_q(str(value))}" for name, value in attrs.items())
    return f"  {key} [label={_q(label)} {body}]"


def timeline_dot(
    snapshot: RunSnapshot, found: Sequence[Attempt], *, by: str = "job",
    width: float = DEFAULT_WIDTH, styles: StyleOverrides | None = None,
) -> str:
    """The DOT source of the Gantt chart of a run's attempts (``WorkflowRun.attempts()``)
    (pinned positions: render with the ``nop2`` engine)."""
    if by not in ("job", "worker"):
        raise ConfigurationError(f"by must be 'job' or 'worker', got {by!r}")
    check_number("width", width, minimum=100, kind="a number of points")
    palette = get_styles(styles)
    lines = [f"digraph {_q(_text(snapshot.name) + ' timeline')} {{",
             (f"  graph [bgcolor=white fontname={_q(FONT)} fontsize=13 labelloc=t "
              f"label={_q(_text(snapshot.name) + ' — attempts over time')} splines=false]"),
             f"  node [fontname={_q(FONT)} fontsize=10 fixedsize=true]",
             '  edge [arrowhead=none color="#dddddd" style=dotted]']
    if not found:
        lines.append(_node("empty", "no attempt has started yet", shape="plaintext",
                           fixedsize="false", pos="0,0"))
        return "\n".join(lines + ["}"])

    rows: list[str] = []
    row_of: dict[str, int] = {}
    labels: dict[str, str] = {}
    for attempt in found:
        key = attempt.job_id if by == "job" else attempt.worker
        if key not in row_of:
            row_of[key] = len(rows)
            rows.append(key)
            labels[key] = attempt.name if by == "job" else (attempt.worker or "(no worker)")
    if by == "job":  # submission order, not start order
        order = {state.id: i for i, state in enumerate(snapshot.jobs)}
        rows.sort(key=lambda job_id: order.get(job_id, len(order)))
        row_of = {key: i for i, key in enumerate(rows)}

    t0 = min(a.start for a in found)
    span = max((max(a.end for a in found) - t0).total_seconds(), 1e-3)
    left = min(LABEL_MAX, max(len(text) for text in labels.values()) * LABEL_CHAR_WIDTH + 16)
    bottom = (len(rows) + 1) * ROW_HEIGHT

    def x_of(moment: datetime) -> float:
        return left + (moment - t0).total_seconds() / span * width

    def y_of(row: int) -> float:
        return bottom - (row + 0.5) * ROW_HEIGHT

    for key, row in row_of.items():
        lines.append(_node(f"row{row}", _text(labels[key]) + "\\r", shape="plaintext",
                           width=f"{(left - 8) / 72:.3f}", height=f"{ROW_HEIGHT / 72:.3f}",
                           pos=f"{(left - 8) / 2:.1f},{y_of(row):.1f}",
                           id=f"row-{row}", tooltip=_text(labels[key])))
    step = _tick_step(span)
    tick = 0.0
    index = 0
    while tick <= span + 1e-9:
        x = left + tick / span * width
        lines.append(_node(f"tick{index}", format_duration(tick) or "0 s", shape="plaintext",
                           width="0.8", height="0.2", pos=f"{x:.1f},{ROW_HEIGHT / 3:.1f}",
                           fontsize="9", fontcolor="#666666"))
        lines.append(_node(f"top{index}", "", shape="point", width="0.01",
                           pos=f"{x:.1f},{bottom:.1f}", style="invis"))
        lines.append(_node(f"base{index}", "", shape="point", width="0.01",
                           pos=f"{x:.1f},{ROW_HEIGHT * 0.75:.1f}", style="invis"))
        lines.append(f"  base{index} -> top{index}")
        tick += step
        index += 1

    reused = _reused_attempts(snapshot, found)
    for n, attempt in enumerate(found):
        source = reused.get(attempt.id)
        style = palette[CACHED] if source else _look(attempt.status, palette)
        x0, x1 = x_of(attempt.start), x_of(attempt.end)
        bar = max(x1 - x0, 2.0)
        worker = attempt.worker or "?"
        label = worker if len(worker) * 5.5 < bar - 4 else ""
        took = format_duration((attempt.end - attempt.start).total_seconds())
        status = (f"{attempt.status} · {CACHED.value} from job {short_id(source)}" if source
                  else attempt.status)
        tooltip = (f"{attempt.name} · attempt {attempt.number} · {worker} · {status} · "
                   f"{_hms(attempt.start)} – {_hms(attempt.end)} ({took})")
        if attempt.error:
            tooltip += f" · {first_line(attempt.error)}"
        key = attempt.job_id if by == "job" else attempt.worker
        y = y_of(row_of[key])
        lines.append(_node(
            f"a{n}", _text(label), shape="box", style=style.dot_style, fillcolor=style.fill,
            color=style.border, fontcolor=style.font, penwidth=f"{min(style.penwidth, 2):g}",
            width=f"{bar / 72:.4f}", height=f"{BAR_HEIGHT / 72:.4f}", fontsize="8",
            pos=f"{x0 + bar / 2:.2f},{y:.2f}",
            id=f"attempt-{attempt.id}", tooltip=_text(tooltip),
            **{"class": f"attempt {attempt.status}" + (f" {CACHED.value}" if source else "")},
        ))
        if source and by == "job":  # its own row: room beside the bar for a word
            lines.append(_node(
                f"c{n}", CACHED.value, shape="plaintext", fixedsize="false", fontsize="8",
                fontcolor=style.font, pos=f"{x0 + bar + CACHED_MARK_WIDTH / 2:.2f},{y:.2f}",
                width=f"{CACHED_MARK_WIDTH / 72:.4f}", height=f"{BAR_HEIGHT / 72:.4f}",
                margin="0", id=f"cached-{attempt.id}", tooltip=_text(tooltip),
            ))
    lines.append("}")
    return "\n".join(lines)


def timeline(
    snapshot: RunSnapshot, found: Sequence[Attempt], *, by: str = "job",
    width: float = DEFAULT_WIDTH, styles: StyleOverrides | None = None,
    filename: str | None = None, format: str | None = None, renderer: str = "auto",
) -> Picture:
    """A Picture of a run's attempts over time (saves and displays like ``visualize()``)."""
    import graphviz

    source = timeline_dot(snapshot, found, by=by, width=width, styles=styles)
    picture = Picture(graphviz.Source(source), format=format or "svg",
                      summary=f"timeline of {snapshot.summary()}", renderer=renderer,
                      engine="nop2")
    if filename is not None:
        picture.write(filename, format=format)
    return picture
