"""The entry points of the DAG pictures: a :class:`~.render.Picture` of a workflow or a
run, and the mime bundle a notebook displays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..snapshot import RunOutline
from .dot import to_digraph
from .grouping import GROUP_MAX_NODES, GROUP_THRESHOLD
from .mermaid import to_mermaid
from .outline import outline_view
from .render import Picture
from .styles import DEFAULT_RANKDIR, StyleOverrides
from .view import build_view

if TYPE_CHECKING:
    import networkx as nx

    from ..snapshot import RunSnapshot


def visualize(
    graph: nx.DiGraph | None,
    snapshot: RunSnapshot | RunOutline | None = None,
    *,
    rankdir: str = DEFAULT_RANKDIR,
    legend: bool = False,
    filename: str | None = None,
    format: str | None = None,
    styles: StyleOverrides | None = None,
    around: Any = None,
    hops: int = 1,
    group_threshold: int | None = GROUP_THRESHOLD,
    max_nodes: int = GROUP_MAX_NODES,
    expand_maps: bool = False,
    renderer: str = "auto",
) -> Picture:
    """A :class:`~.render.Picture` of the workflow; with ``filename`` also written to disk
    (``format`` from the extension, or appended as the extension when it has none).

    A map is one node with its items' progress; ``expand_maps=True`` draws its items
    too (see :func:`~.view.build_view`). A run's outline (a run without maps, drawn
    without ``around`` or ``expand_maps``) draws the same picture from its columns."""
    if isinstance(snapshot, RunOutline):
        view = outline_view(snapshot, rankdir=rankdir, group_threshold=group_threshold,
                            max_nodes=max_nodes)
    else:
        view = build_view(graph, snapshot, rankdir=rankdir, around=around, hops=hops,
                          group_threshold=group_threshold, max_nodes=max_nodes,
                          expand_maps=expand_maps)
    picture = Picture(
        to_digraph(view, styles=styles, legend=legend), format=format or "svg",
        summary=view.summary, mermaid=to_mermaid(view, styles=styles), renderer=renderer,
    )
    if filename is not None:
        picture.write(filename, format=format)
    return picture


def display_bundle(
    graph: nx.DiGraph | None, read_snapshot: Any, fallback: str
) -> dict[str, Any]:
    """The Jupyter mime bundle of a workflow or run: SVG and a text summary.

    Never raises: when the status cannot be read or the picture cannot be rendered,
    the text says so (and what to install) and the SVG is left out.
    """
    try:
        snapshot = read_snapshot() if read_snapshot is not None else None
    except Exception as exc:
        return {"text/plain": f"{fallback}\n(cannot read the status: {exc})"}
    try:
        picture = visualize(graph, snapshot)
    except Exception as exc:
        summary = snapshot.summary() if snapshot is not None else fallback
        return {"text/plain": f"{summary}\n(cannot draw the graph: {exc})"}
    return picture._repr_mimebundle_()
