"""DOT source of a view (through the ``graphviz`` package; building it needs no renderer)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import TYPE_CHECKING

from ..job_status import JobStatus
from .styles import CACHED, STRUCTURE_STYLE, Style, StyleKey, StyleOverrides, get_styles
from .text import FONT, format_number
from .view import GraphView, ViewNode

if TYPE_CHECKING:
    import graphviz


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\")


def _label(lines: Iterable[str]) -> str:
    return "\\n".join(_escape(line) for line in lines)


def node_attributes(node: ViewNode, styles: Mapping[StyleKey, Style]) -> dict[str, str]:
    """The DOT attributes of a node, in a fixed order."""
    look = node.look
    style = STRUCTURE_STYLE if look is None else styles[look]
    attrs = {"id": node.dom_id, "tooltip": _escape(node.tooltip)}
    if node.counts:
        total = sum(n for _, n in node.counts)
        stripes = ":".join(f"{styles[s].fill};{n / total:.3f}" for s, n in node.bands())
        attrs.update(shape="box", style="striped" if style.border_style == "solid"
                     else f"striped,{style.border_style}", fillcolor=stripes)
    else:
        attrs.update(shape=style.shape, style=style.dot_style, fillcolor=style.fill)
    attrs.update(color=style.border, fontcolor=style.font, penwidth=format_number(style.penwidth))
    return attrs


def to_digraph(
    view: GraphView, *, styles: StyleOverrides | None = None, legend: bool = False,
    layout_only: bool = False,
) -> graphviz.Digraph:
    """The view as a ``graphviz.Digraph`` (building it needs no renderer).

    ``layout_only`` is for the live panel, which lays out once and restyles the SVG
    itself: every node a plain box whose SVG id is its key, no tooltips.
    """
    import graphviz

    palette = get_styles(styles)
    # The live panel lays out once: a title with counts would go stale (its progress
    # bar shows them), so its graph is titled with the workflow's name only.
    title = view.name if layout_only else view.title
    graph_attr = {
        "rankdir": view.rankdir, "label": _escape(title), "labelloc": "t",
        "fontname": FONT, "fontsize": "13", "bgcolor": "white",
        "nodesep": "0.25", "ranksep": "0.4",
    }
    if not layout_only:
        graph_attr["tooltip"] = _escape(view.title)
    dot = graphviz.Digraph(
        name=view.name, graph_attr=graph_attr,
        node_attr={"fontname": FONT, "fontsize": "11", "height": "0.3", "margin": "0.12,0.05"},
        edge_attr={"color": "#666666", "arrowsize": "0.7"},
    )
    for node in view.nodes:
        lines = node.lines
        if layout_only:
            attrs = {"id": node.key, "shape": "box", "style": "filled", "fillcolor": "white"}
            lines = node.reserve or lines  # a map's counts change: room for them
        else:
            attrs = node_attributes(node, palette)
        dot.node(node.key, graphviz.nohtml(_label(lines)), **attrs)
    for tail, head in view.edges:
        dot.edge(tail, head)
    if legend:
        _add_legend(dot, legend_entries(view, palette), sideways=view.rankdir in ("LR", "RL"))
    return dot


def legend_entries(view: GraphView, palette: Mapping[StyleKey, Style]) -> list[tuple[str, Style]]:
    """What the legend shows: every status, and ``cached`` after ``completed`` when the
    picture draws a reused result (a run without the cache keeps the legend it had)."""
    if not view.submitted:
        return [("not submitted", STRUCTURE_STYLE)]
    entries = []
    for status in JobStatus:
        entries.append((status.value, palette[status]))
        if status is JobStatus.COMPLETED and view.cached:
            entries.append((CACHED.value, palette[CACHED]))
    return entries


def _add_legend(dot: graphviz.Digraph, entries: list[tuple[str, Style]],
                sideways: bool) -> None:
    """One row of sample nodes (a column, top down, when the graph runs sideways)."""
    import graphviz

    if sideways:  # a rank runs bottom-up there
        entries = entries[::-1]
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="status", fontsize="11", style="rounded", color="#bbbbbb",
                    fontname=FONT)
        with legend.subgraph() as row:
            row.attr(rank="same")
            for text, style in entries:
                row.node(f"legend_{text.replace(' ', '_')}", graphviz.nohtml(text),
                         id=f"legend-{text.replace(' ', '_')}", shape=style.shape,
                         style=style.dot_style, fillcolor=style.fill, color=style.border,
                         fontcolor=style.font, penwidth=format_number(style.penwidth),
                         fontsize="10")
        keys = [f"legend_{text.replace(' ', '_')}" for text, _ in entries]
        for tail, head in pairwise(keys):
            legend.edge(tail, head, style="invis")


def to_dot(view: GraphView, *, styles: StyleOverrides | None = None,
           legend: bool = False) -> str:
    """The DOT source of the view."""
    return to_digraph(view, styles=styles, legend=legend).source
