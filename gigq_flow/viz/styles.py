"""The one state-to-style map: how each job status looks in every view.

The picture (:mod:`.dot`, :mod:`.mermaid`), the live panel (:mod:`.widget`), the
timeline, the legend and the CLI all read :func:`get_styles`, so a status looks the
same everywhere. Each style pairs a colour with a border pattern and a shape, so the
states read without colour vision too. Besides the seven statuses the map has one more
key, :data:`CACHED` (``"cached"``): a completed step that reused an earlier run's
result. Override any key for the whole process with :func:`set_style` (undo with
:func:`reset_styles`), or per call with ``styles={key: {...}}``.

This module imports nothing heavy: the CLI may import it at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from ..errors import ConfigurationError
from ..job_status import JobStatus

BORDERS = ("solid", "dashed", "dotted")
"""Border patterns a style may use (graphviz ``style`` names, SVG dash arrays below)."""

SHAPES = ("box", "octagon", "doubleoctagon", "hexagon", "ellipse", "diamond")
"""Node shapes that the picture and the live panel both draw."""

RANKDIRS = ("TB", "LR", "BT", "RL")
"""Directions a DAG picture may run: top-bottom, left-right, and their reverses."""
DEFAULT_RANKDIR = "TB"

DASH_ARRAYS = {"solid": None, "dashed": "5,2", "dotted": "1,5"}
"""The dash patterns Graphviz draws, so the live panel matches the picture."""


class Look(str, Enum):
    """A key of the style map that is not a status. Like :class:`JobStatus` it is a
    string (``Look.CACHED == "cached"``), so either spelling picks a style."""

    CACHED = "cached"
    """A completed step that reused an earlier run's result instead of running
    (``JobState.cached``): ``set_style("cached", ...)``, ``styles={"cached": ...}``."""

    def __str__(self) -> str:
        return self.value


CACHED = Look.CACHED
StyleKey = JobStatus | Look
"""A key of the style map: a status, or :data:`CACHED`."""


@dataclass(frozen=True)
class Style:
    """How one status looks.

    ``fill`` and ``border`` are ``#rrggbb`` colours, ``font`` the text colour;
    ``border_style`` one of :data:`BORDERS`, ``penwidth`` the border width in points;
    ``shape`` one of :data:`SHAPES`; ``symbol`` a one-character mark for text views
    (the defaults are Latin-1 characters, which every font has) and ``terminal`` an ANSI
    colour name for the CLI.
    """

    fill: str
    border: str
    border_style: str = "solid"
    penwidth: float = 1.0
    shape: str = "box"
    font: str = "#1a1a1a"
    symbol: str = "?"
    terminal: str = "default"

    @property
    def dot_style(self) -> str:
        """The graphviz ``style`` attribute of a filled node in this style."""
        return "filled" if self.border_style == "solid" else f"filled,{self.border_style}"

    @property
    def dasharray(self) -> str | None:
        """The SVG ``stroke-dasharray`` of the border (None when solid)."""
        return DASH_ARRAYS[self.border_style]

    def css(self) -> str:
        """Inline CSS for an HTML chip (legend, counts, table cells) in this style."""
        border = {"solid": "solid", "dashed": "dashed", "dotted": "dotted"}[self.border_style]
        width = max(1, round(self.penwidth))
        return (f"background:{self.fill};color:{self.font};"
                f"border:{width}px {border} {self.border}")


# Okabe-Ito hues on light fills: each status differs by hue *and* by border or shape.
# A reused step is a completed one drawn lighter, with a thick dashed border and "=".
# Symbols stay within Latin-1: a glyph outside it (such as a stopwatch) shows as a
# missing-glyph box where the font lacks it.
DEFAULT_STYLES: dict[StyleKey, Style] = {
    JobStatus.PENDING: Style("#f2f2f2", "#8c8c8c", "dashed", 1.0, "box", "#404040", "·", "white"),
    JobStatus.RUNNING: Style("#cfe7fb", "#0072b2", "solid", 3.0, "box", "#003a5c", "»", "blue"),
    JobStatus.COMPLETED: Style("#c7ebd9", "#009e73", "solid", 1.0, "box", "#004d38", "+", "green"),
    CACHED: Style("#e8f6ef", "#009e73", "dashed", 2.0, "box", "#004d38", "=", "green"),
    JobStatus.FAILED: Style("#f8c9c4", "#c0392b", "solid", 2.5, "octagon", "#5c0f08", "×", "red"),
    JobStatus.TIMEOUT: Style("#fbdcb3", "#d55e00", "dashed", 2.5, "doubleoctagon", "#5c2900", "!",
                             "yellow"),
    JobStatus.CANCELLED: Style("#dcdcdc", "#4d4d4d", "dotted", 2.0, "box", "#262626", "Ø",
                               "bright_black"),
    JobStatus.UPSTREAM_FAILED: Style("#f3d9e8", "#cc79a7", "dotted", 2.0, "hexagon", "#5a1f40", "^",
                                     "magenta"),
}

STRUCTURE_STYLE = Style("#ffffff", "#4d4d4d", "solid", 1.0, "box", "#1a1a1a", "-", "default")
"""Nodes of a workflow that has not been submitted: structure only, no status."""

StyleOverrides = Mapping[JobStatus | str, Style | Mapping[str, Any]]
"""Per-call changes: a status or ``"cached"`` -> a :class:`Style` or the fields to change."""

_lock = threading.Lock()
_styles: dict[StyleKey, Style] = dict(DEFAULT_STYLES)


def _check(style: Style, key: StyleKey) -> Style:
    name = key.value
    if style.border_style not in BORDERS:
        raise ConfigurationError(
            f"border_style of {name!r} must be one of {BORDERS}, got {style.border_style!r}"
        )
    if style.shape not in SHAPES:
        raise ConfigurationError(
            f"shape of {name!r} must be one of {SHAPES}, got {style.shape!r}"
        )
    for field_name in ("fill", "border", "font"):
        value = getattr(style, field_name)
        if not (isinstance(value, str) and value.startswith("#") and len(value) in (4, 7)):
            raise ConfigurationError(
                f"{field_name} of {name!r} must be a '#rrggbb' colour, got {value!r}"
            )
    return style


def style_key(key: JobStatus | str) -> StyleKey:
    """``key`` as a key of the style map: a :class:`JobStatus`, or :data:`CACHED`."""
    if key == CACHED:
        return CACHED
    try:
        return JobStatus(key)
    except ValueError:
        valid = ", ".join(s.value for s in JobStatus)
        raise ConfigurationError(
            f"unknown status {key!r}; use one of {valid}, or {CACHED.value!r} (a completed "
            "step that reused an earlier result)"
        ) from None


def look_of(status: JobStatus, cached: bool) -> StyleKey:
    """The key a job is drawn with: :data:`CACHED` for a completed job that reused an
    earlier result, else its status."""
    return CACHED if cached and status is JobStatus.COMPLETED else status


def _merge(base: Style, change: Style | Mapping[str, Any], key: StyleKey) -> Style:
    if isinstance(change, Style):
        return _check(change, key)
    known = {f.name for f in fields(Style)}
    unknown = set(change) - known
    if unknown:
        raise ConfigurationError(
            f"unknown style field(s) {sorted(unknown)} for {key.value!r}; use {sorted(known)}"
        )
    return _check(replace(base, **change), key)


def get_styles(overrides: StyleOverrides | None = None) -> dict[StyleKey, Style]:
    """The style of every status and of :data:`CACHED`: the process-wide map with
    ``overrides`` on top.

    ``overrides`` maps a status (enum or string) or ``"cached"`` to a :class:`Style` or
    to a dict of the fields to change, e.g. ``{"failed": {"fill": "#ff0000"}}``.
    """
    with _lock:
        styles = dict(_styles)
    for name, change in (overrides or {}).items():
        key = style_key(name)
        styles[key] = _merge(styles[key], change, key)
    return styles


def style_for(status: JobStatus | str, overrides: StyleOverrides | None = None) -> Style:
    """The style of one status (or of ``"cached"``)."""
    return get_styles(overrides)[style_key(status)]


def set_style(status: JobStatus | str, style: Style | None = None, **changes: Any) -> Style:
    """Change how a status (or ``"cached"``) looks in every view of this process;
    returns the new style.

    ``set_style("failed", fill="#ff8080")`` changes fields;
    ``set_style("failed", Style(...))`` replaces the style.
    """
    name = style_key(status)
    with _lock:
        base = _styles[name]
        new = _merge(base, style, name) if style is not None else base
        new = _merge(new, changes, name) if changes else new
        _styles[name] = new
    return new


def reset_styles() -> None:
    """Back to :data:`DEFAULT_STYLES`."""
    with _lock:
        _styles.clear()
        _styles.update(DEFAULT_STYLES)
