"""An SVG laid out once and restyled by status without another layout.

The live panel renders its graph once (every node a plain box whose SVG id is its
DOT key), then :class:`LiveSvg` cuts the SVG into static text and one slot per node.
A refresh regenerates only the slots of nodes whose look changed, drawing each
status's own shape, fill, border and text colour inside the node's laid-out box, and
joins the pieces: no Graphviz call after the first. A map's node also gets its label's
new text (its counts), in the room its layout kept for them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .styles import STRUCTURE_STYLE, Style, StyleKey
from .view import ViewNode

_NODE = re.compile(
    r'<g id="(?P<key>[jg]\d+)" class="node">\n<title>[^<]*</title>\n'
    r'(?P<shape><polygon [^>]*/>)\n(?P<texts>(?:<text [^>]*>.*?</text>\n)*)</g>',
    re.DOTALL,
)
_POINTS = re.compile(r'points="([^"]+)"')
_TEXT_FILL = re.compile(r' fill="[^"]*"')
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


class LayoutError(ValueError):
    """The SVG does not have the node groups a layout-only DOT produces."""


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_polygon(cls, element: str) -> Box:
        match = _POINTS.search(element)
        if not match:
            raise LayoutError(f"no points in {element[:80]!r}")
        xs, ys = [], []
        for pair in match.group(1).split():
            x, y = pair.split(",")
            xs.append(float(x))
            ys.append(float(y))
        return cls(min(xs), min(ys), max(xs), max(ys))


def _pts(points: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{x:.2f},{y:.2f}" for x, y in points)


def outline(shape: str, box: Box, inset: float = 0.0) -> str:
    """An SVG element drawing ``shape`` inside ``box`` (without paint attributes)."""
    x0, y0, x1, y1 = box.x0 + inset, box.y0 + inset, box.x1 - inset, box.y1 - inset
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape == "ellipse":
        return f'<ellipse cx="{cx:.2f}" cy="{cy:.2f}" rx="{w / 2:.2f}" ry="{h / 2:.2f}"'
    if shape == "diamond":
        points = [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    elif shape in ("octagon", "doubleoctagon"):
        c = min(h * 0.3, w / 4)
        points = [(x0 + c, y0), (x1 - c, y0), (x1, y0 + c), (x1, y1 - c),
                  (x1 - c, y1), (x0 + c, y1), (x0, y1 - c), (x0, y0 + c)]
    elif shape == "hexagon":
        c = min(h * 0.35, w / 4)
        points = [(x0 + c, y0), (x1 - c, y0), (x1, cy), (x1 - c, y1), (x0 + c, y1), (x0, cy)]
    else:
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return f'<polygon points="{_pts(points)}"'


def _with_text(element: str, text: str) -> str:
    """A ``<text>`` element of the layout saying ``text`` instead."""
    return f"{element[:element.index('>') + 1]}{html.escape(text)}</text>"


def _paint(style: Style, fill: str) -> str:
    dash = f' stroke-dasharray="{style.dasharray}"' if style.dasharray else ""
    return f' fill="{fill}" stroke="{style.border}" stroke-width="{style.penwidth:g}"{dash}/>'


@dataclass
class _Slot:
    box: Box
    texts: list[str]
    signature: object = None
    fragment: str = ""


class LiveSvg:
    """The panel's picture: laid out once, each node restyled by :meth:`update`."""

    def __init__(self, svg: str, styles: Mapping[StyleKey, Style]) -> None:
        svg = _PROLOGUE.sub("", svg, count=1)
        self.styles = styles
        self._pieces: list[str] = []
        self._slots: dict[str, _Slot] = {}
        self._index: dict[str, int] = {}
        position = 0
        for match in _NODE.finditer(svg):
            self._pieces.append(svg[position:match.start()])
            key = match.group("key")
            self._index[key] = len(self._pieces)
            self._pieces.append("")
            texts = re.findall(r"<text [^>]*>.*?</text>", match.group("texts"), re.DOTALL)
            self._slots[key] = _Slot(Box.from_polygon(match.group("shape")), texts)
            position = match.end()
        self._pieces.append(svg[position:])
        if not self._slots:
            raise LayoutError("the SVG has no node groups to restyle")

    @property
    def keys(self) -> set[str]:
        return set(self._slots)

    def update(self, nodes: Iterable[ViewNode]) -> int:
        """Restyle the nodes whose status, counts, reused results, label or tooltip
        changed; returns how many."""
        changed = 0
        for node in nodes:
            slot = self._slots.get(node.key)
            signature = (node.status, node.counts, node.cached, node.tooltip, node.dom_id,
                         node.lines)
            if slot is None or slot.signature == signature:
                continue
            slot.signature = signature
            slot.fragment = self._fragment(node, slot)
            self._pieces[self._index[node.key]] = slot.fragment
            changed += 1
        return changed

    def svg(self) -> str:
        """The whole SVG as it stands."""
        return "".join(self._pieces)

    def _fragment(self, node: ViewNode, slot: _Slot) -> str:
        look = node.look
        style = STRUCTURE_STYLE if look is None else self.styles[look]
        # the status, then the look where it differs: "node completed cached"
        classes = "not_submitted" if node.status is None else node.status.value
        if look is not None and look != node.status:
            classes += f" {look}"
        # a job's (or a map's) node selects it on a click (the panel's handler reads
        # data-job)
        pick = (f' data-job="{html.escape(node.job_ids[0])}" style="cursor:pointer"'
                if not node.counts and len(node.job_ids) == 1 else "")
        parts = [f'<g id="{html.escape(node.dom_id)}" class="node {classes}"{pick}>',
                 f"<title>{html.escape(node.tooltip)}</title>"]
        box = slot.box
        if node.counts:
            total = sum(n for _, n in node.counts)
            x = box.x0
            for member_look, n in node.bands():
                width = (box.x1 - box.x0) * n / total
                parts.append(
                    f'<rect x="{x:.2f}" y="{box.y0:.2f}" width="{width:.2f}" '
                    f'height="{box.y1 - box.y0:.2f}" fill="{self.styles[member_look].fill}" '
                    f'stroke="none"/>'
                )
                x += width
            parts.append(outline("box", box) + _paint(style, "none"))
        else:
            parts.append(outline(style.shape, box) + _paint(style, style.fill))
            if style.shape == "doubleoctagon":
                parts.append(outline(style.shape, box, inset=3.0) + _paint(style, "none"))
        fill = f' fill="{style.font}"'
        texts = slot.texts
        if node.is_map:  # laid out with its widest label: its text now
            texts = [_with_text(text, line)
                     for text, line in zip(texts, node.lines, strict=False)]
        parts.extend(_TEXT_FILL.sub("", text).replace("<text ", f"<text{fill} ", 1)
                     for text in texts)
        parts.append("</g>")
        return "\n".join(parts)
