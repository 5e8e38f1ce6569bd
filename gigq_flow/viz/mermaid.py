"""A view as a Mermaid flowchart (renders in GitHub, GitLab, JupyterLab)."""

from __future__ import annotations

from .styles import STRUCTURE_STYLE, Style, StyleOverrides, get_styles
from .text import format_number
from .view import GraphView

_MERMAID_SHAPES = {
    "box": ('["', '"]'), "octagon": ('{{"', '"}}'), "doubleoctagon": ('{{"', '"}}'),
    "hexagon": ('{{"', '"}}'), "ellipse": ('(["', '"])'), "diamond": ('{"', '"}'),
}


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "#quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _mermaid_class(name: str, style: Style) -> str:
    parts = [f"fill:{style.fill}", f"stroke:{style.border}",
             f"stroke-width:{format_number(style.penwidth)}px", f"color:{style.font}"]
    if style.dasharray:
        parts.append(f"stroke-dasharray:{style.dasharray.replace(',', ' ')}")
    return f"    classDef {name} {','.join(parts)};"


def to_mermaid(view: GraphView, *, styles: StyleOverrides | None = None) -> str:
    """The view as a Mermaid flowchart (renders in GitHub, GitLab, JupyterLab)."""
    palette = get_styles(styles)
    lines = [f"%% {_mermaid_text(view.title)}", f"flowchart {view.rankdir}"]
    used: dict[str, Style] = {}
    for node in view.nodes:
        look = node.look
        style = STRUCTURE_STYLE if look is None else palette[look]
        cls = "not_submitted" if look is None else str(look)
        used[cls] = style
        opening, closing = _MERMAID_SHAPES["box" if node.counts else style.shape]
        label = "<br/>".join(_mermaid_text(line) for line in node.lines)
        lines.append(f"    {node.key}{opening}{label}{closing}:::{cls}")
    lines.extend(f"    {tail} --> {head}" for tail, head in view.edges)
    lines.extend(_mermaid_class(cls, style) for cls, style in used.items())
    return "\n".join(lines) + "\n"
