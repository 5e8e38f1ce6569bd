"""DOT and Mermaid from a workflow's structure and, once submitted, a status snapshot.

:func:`build_view` turns ``(graph, RunSnapshot | None)`` into a :class:`GraphView`:
the nodes to draw (jobs, or a group node for many instances of one task), their
labels, tooltips and statuses, in a stable order. :func:`to_dot` and
:func:`to_mermaid` serialise a view with no renderer at all; :func:`visualize`
wraps the DOT in a :class:`~.render.Picture` that renders, saves and displays.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import networkx as nx

from ..errors import ConfigurationError, JobNotFoundError
from ..job import JobStatus
from ..run import JobState, RunSnapshot
from .styles import STRUCTURE_STYLE, Style, StyleOverrides, get_styles

if TYPE_CHECKING:
    import graphviz

    from .render import Picture

RANKDIRS = ("TB", "LR", "BT", "RL")
DEFAULT_RANKDIR = "TB"
GROUP_THRESHOLD = 100
"""Above this many jobs in the picture, tasks with many instances collapse into groups."""
GROUP_MIN_INSTANCES = 3
"""A task collapses into a group node when it has at least this many instances."""
TOOLTIP_MAX = 200
FONT = "Helvetica,Arial,sans-serif"

# A group node takes the look of its most telling member status.
_GROUP_PRIORITY = (
    JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.RUNNING, JobStatus.PENDING,
    JobStatus.UPSTREAM_FAILED, JobStatus.CANCELLED, JobStatus.COMPLETED,
)


@dataclass(frozen=True)
class ViewNode:
    """One node of the picture: a job, or a group of instances of one task."""

    key: str
    """The DOT node name (``j<index>`` for a job, ``g<index>`` for a group)."""
    dom_id: str
    """The SVG element id (``job-<job id>`` or ``group-<key>``)."""
    name: str
    job_ids: tuple[str, ...]
    status: JobStatus | None
    """None before submission; a group's most telling member status."""
    counts: tuple[tuple[JobStatus, int], ...]
    """Per-status member counts of a group (non-zero only); empty for a job."""
    lines: tuple[str, ...]
    tooltip: str

    @property
    def is_group(self) -> bool:
        return self.key.startswith("g")


@dataclass(frozen=True)
class GraphView:
    """What to draw: nodes and edges in a stable order, with a title."""

    name: str
    title: str
    summary: str
    nodes: tuple[ViewNode, ...]
    edges: tuple[tuple[str, str], ...]
    rankdir: str
    submitted: bool
    node_of_job: Mapping[str, str]
    """job id -> key of the node that draws it."""


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


def final_duration(job: JobState) -> float | None:
    """The duration of a finished attempt; None while running or never started
    (so that the same state always gives the same label)."""
    return None if job.status is JobStatus.RUNNING else job.duration


def job_detail(job: JobState) -> str:
    """The second label line: duration once known, attempts when more than one."""
    parts = []
    duration = format_duration(final_duration(job))
    if duration:
        parts.append(duration)
    if job.attempts > 1:
        parts.append(f"{job.attempts} attempts")
    return " · ".join(parts)


def job_tooltip(job: JobState) -> str:
    """The first line of the error, else name and status."""
    return first_line(job.error) or f"{job.name}: {job.status.value}"


def counts_text(counts: Iterable[tuple[JobStatus, int]]) -> str:
    return " · ".join(f"{n} {status.value}" for status, n in counts)


def group_status(counts: Mapping[JobStatus, int]) -> JobStatus:
    return next(status for status in _GROUP_PRIORITY if counts.get(status))


# -- building the view ------------------------------------------------------------------
def structure_from_snapshot(snapshot: RunSnapshot) -> nx.DiGraph:
    """The DAG of a run as the snapshot sees it."""
    graph = nx.DiGraph(name=snapshot.name)
    for job in snapshot.jobs:
        graph.add_node(job.id, name=job.name, function=job.function)
    graph.add_edges_from(snapshot.edges)
    return graph


def _ordered_ids(graph: nx.DiGraph, snapshot: RunSnapshot | None) -> list[str]:
    if snapshot is None:
        return list(graph.nodes)
    ids = [job.id for job in snapshot.jobs]
    seen = set(ids)
    return ids + [node for node in graph.nodes if node not in seen]


def _resolve(around: Any, graph: nx.DiGraph) -> str:
    job_id = getattr(around, "id", around)
    if isinstance(job_id, str) and job_id in graph:
        return job_id
    if isinstance(around, str):
        named = [node for node, data in graph.nodes(data=True) if data.get("name") == around]
        if len(named) == 1:
            return named[0]
        if named:
            raise ConfigurationError(
                f"{len(named)} jobs are named {around!r}; pass around=<Job> or a job id"
            )
    raise JobNotFoundError(f"around={around!r} is neither a job, a job id nor a task name here")


def neighbourhood(graph: nx.DiGraph, centre: str, hops: int) -> set[str]:
    """``centre`` and the jobs at most ``hops`` edges upstream or downstream of it."""
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ConfigurationError(f"hops must be an int >= 0, got {hops!r}")
    keep = {centre}
    for neighbours in (graph.predecessors, graph.successors):
        frontier = deque([(centre, 0)])
        seen = {centre}
        while frontier:
            node, depth = frontier.popleft()
            if depth == hops:
                continue
            for other in neighbours(node):
                if other not in seen:
                    seen.add(other)
                    keep.add(other)
                    frontier.append((other, depth + 1))
    return keep


def build_view(
    graph: nx.DiGraph | None,
    snapshot: RunSnapshot | None = None,
    *,
    rankdir: str = DEFAULT_RANKDIR,
    around: Any = None,
    hops: int = 1,
    group_threshold: int | None = GROUP_THRESHOLD,
    compact: bool = False,
) -> GraphView:
    """The nodes and edges to draw.

    ``graph`` has a node per job id with a ``name`` attribute (``Workflow.graph``);
    with only a ``snapshot`` the structure comes from it. ``around`` (a Job, job id
    or unique task name) keeps the jobs within ``hops`` edges of it. When more than
    ``group_threshold`` jobs remain (None: never), each task with at least
    :data:`GROUP_MIN_INSTANCES` instances becomes one group node. ``compact`` keeps
    labels to the name (the live panel lays out once, so its labels must not change).
    """
    if rankdir not in RANKDIRS:
        raise ConfigurationError(f"rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if group_threshold is not None and (
        isinstance(group_threshold, bool) or not isinstance(group_threshold, int)
        or group_threshold < 0
    ):
        raise ConfigurationError(
            f"group_threshold must be an int >= 0 or None, got {group_threshold!r}"
        )
    if graph is None:
        if snapshot is None:
            raise ConfigurationError("build_view() needs a graph, a snapshot or both")
        graph = structure_from_snapshot(snapshot)
    states = {job.id: job for job in snapshot.jobs} if snapshot is not None else {}
    order = _ordered_ids(graph, snapshot)
    index = {job_id: i for i, job_id in enumerate(order)}
    name = str(graph.graph.get("name") or (snapshot.name if snapshot else "workflow"))
    title = name if snapshot is None else f"{name} — {snapshot.finished}/{snapshot.total} finished"

    shown = order
    if around is not None:
        centre = _resolve(around, graph)
        keep = neighbourhood(graph, centre, hops)
        shown = [job_id for job_id in order if job_id in keep]
        title += f" (around {graph.nodes[centre].get('name', centre)}, {hops} hops)"

    def task_name(job_id: str) -> str:
        state = states.get(job_id)
        return state.name if state else str(graph.nodes[job_id].get("name", job_id))

    grouped: dict[str, list[str]] = {}
    if group_threshold is not None and len(shown) > group_threshold:
        by_name: dict[str, list[str]] = {}
        for job_id in shown:
            by_name.setdefault(task_name(job_id), []).append(job_id)
        grouped = {n: ids for n, ids in by_name.items() if len(ids) >= GROUP_MIN_INSTANCES}

    nodes: list[ViewNode] = []
    node_of_job: dict[str, str] = {}
    for job_id in shown:
        tname = task_name(job_id)
        if tname in grouped:
            members = grouped[tname]
            if members[0] != job_id:
                continue
            node = group_node(f"g{index[job_id]}", tname, members, states, compact)
        else:
            node = job_node(f"j{index[job_id]}", job_id, tname, graph, states.get(job_id),
                             compact)
        nodes.append(node)
        for member in node.job_ids:
            node_of_job[member] = node.key

    position = {node.key: i for i, node in enumerate(nodes)}
    edges = {
        (node_of_job[u], node_of_job[v]) for u, v in graph.edges
        if u in node_of_job and v in node_of_job and node_of_job[u] != node_of_job[v]
    }
    summary = snapshot.summary() if snapshot is not None else (
        f"workflow {name!r}: {graph.number_of_nodes()} jobs, not submitted"
    )
    return GraphView(
        name=name, title=title, summary=summary, nodes=tuple(nodes),
        edges=tuple(sorted(edges, key=lambda e: (position[e[0]], position[e[1]]))),
        rankdir=rankdir, submitted=snapshot is not None, node_of_job=node_of_job,
    )


def job_node(key: str, job_id: str, name: str, graph: nx.DiGraph | None,
             state: JobState | None, compact: bool) -> ViewNode:
    """The node of one job (``state`` None before submission)."""
    if state is None:
        known = graph is not None and job_id in graph
        function = graph.nodes[job_id].get("function", "") if known else ""
        return ViewNode(key, f"job-{job_id}", name, (job_id,), None, (), (name,),
                        function or name)
    detail = "" if compact else job_detail(state)
    lines = (name, detail) if detail else (name,)
    return ViewNode(key, f"job-{job_id}", name, (job_id,), state.status, (), lines,
                    job_tooltip(state))


def group_node(key: str, name: str, members: Sequence[str], states: Mapping[str, JobState],
               compact: bool) -> ViewNode:
    """The node of many instances of one task, with counts per status."""
    head = f"{name} ×{len(members)}"
    if not states:
        return ViewNode(key, f"group-{key}", name, tuple(members), None, (), (head,),
                        f"{len(members)} instances of {name}")
    tally: dict[JobStatus, int] = {}
    for job_id in members:
        state = states.get(job_id)
        if state is not None:
            tally[state.status] = tally.get(state.status, 0) + 1
    counts = tuple((status, tally[status]) for status in JobStatus if tally.get(status))
    text = counts_text(counts)
    lines = (head,) if compact else (head, text)
    errors = [first_line(states[j].error) for j in members if j in states and states[j].error]
    tooltip = f"{name}: {len(members)} jobs — {text}"
    if errors:
        tooltip += f"; first error: {errors[0]}"
    return ViewNode(key, f"group-{key}", name, tuple(members), group_status(tally), counts,
                    lines, first_line(tooltip))


# -- DOT ------------------------------------------------------------------------------------
def _escape(text: str) -> str:
    return text.replace("\\", "\\\\")


def _label(lines: Iterable[str]) -> str:
    return "\\n".join(_escape(line) for line in lines)


def _fmt(number: float) -> str:
    return f"{number:g}"


def node_attributes(node: ViewNode, styles: Mapping[JobStatus, Style]) -> dict[str, str]:
    """The DOT attributes of a node, in a fixed order."""
    style = STRUCTURE_STYLE if node.status is None else styles[node.status]
    attrs = {"id": node.dom_id, "tooltip": _escape(node.tooltip)}
    if node.counts:
        total = sum(n for _, n in node.counts)
        stripes = ":".join(f"{styles[s].fill};{n / total:.3f}" for s, n in node.counts)
        attrs.update(shape="box", style="striped" if style.border_style == "solid"
                     else f"striped,{style.border_style}", fillcolor=stripes)
    else:
        attrs.update(shape=style.shape, style=style.dot_style, fillcolor=style.fill)
    attrs.update(color=style.border, fontcolor=style.font, penwidth=_fmt(style.penwidth))
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
        if layout_only:
            attrs = {"id": node.key, "shape": "box", "style": "filled", "fillcolor": "white"}
        else:
            attrs = node_attributes(node, palette)
        dot.node(node.key, graphviz.nohtml(_label(node.lines)), **attrs)
    for tail, head in view.edges:
        dot.edge(tail, head)
    if legend:
        _add_legend(dot, palette, view.submitted, sideways=view.rankdir in ("LR", "RL"))
    return dot


def _add_legend(dot: graphviz.Digraph, palette: Mapping[JobStatus, Style],
                submitted: bool, sideways: bool) -> None:
    """One row of sample nodes (a column, top down, when the graph runs sideways)."""
    import graphviz

    entries = [(s.value, palette[s]) for s in JobStatus] if submitted else [
        ("not submitted", STRUCTURE_STYLE)]
    if sideways:  # a rank runs bottom-up there
        entries.reverse()
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="status", fontsize="11", style="rounded", color="#bbbbbb",
                    fontname=FONT)
        with legend.subgraph() as row:
            row.attr(rank="same")
            for text, style in entries:
                row.node(f"legend_{text.replace(' ', '_')}", graphviz.nohtml(text),
                         id=f"legend-{text.replace(' ', '_')}", shape=style.shape,
                         style=style.dot_style, fillcolor=style.fill, color=style.border,
                         fontcolor=style.font, penwidth=_fmt(style.penwidth), fontsize="10")
        keys = [f"legend_{text.replace(' ', '_')}" for text, _ in entries]
        for tail, head in pairwise(keys):
            legend.edge(tail, head, style="invis")


def to_dot(view: GraphView, *, styles: StyleOverrides | None = None,
           legend: bool = False) -> str:
    """The DOT source of the view."""
    return to_digraph(view, styles=styles, legend=legend).source


# -- Mermaid --------------------------------------------------------------------------------
_MERMAID_SHAPES = {
    "box": ('["', '"]'), "octagon": ('{{"', '"}}'), "doubleoctagon": ('{{"', '"}}'),
    "hexagon": ('{{"', '"}}'), "ellipse": ('(["', '"])'), "diamond": ('{"', '"}'),
}


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "#quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _mermaid_class(name: str, style: Style) -> str:
    parts = [f"fill:{style.fill}", f"stroke:{style.border}",
             f"stroke-width:{_fmt(style.penwidth)}px", f"color:{style.font}"]
    if style.dasharray:
        parts.append(f"stroke-dasharray:{style.dasharray.replace(',', ' ')}")
    return f"    classDef {name} {','.join(parts)};"


def to_mermaid(view: GraphView, *, styles: StyleOverrides | None = None) -> str:
    """The view as a Mermaid flowchart (renders in GitHub, GitLab, JupyterLab)."""
    palette = get_styles(styles)
    lines = [f"%% {_mermaid_text(view.title)}", f"flowchart {view.rankdir}"]
    used: dict[str, Style] = {}
    for node in view.nodes:
        style = STRUCTURE_STYLE if node.status is None else palette[node.status]
        cls = "not_submitted" if node.status is None else node.status.value
        used[cls] = style
        opening, closing = _MERMAID_SHAPES["box" if node.counts else style.shape]
        label = "<br/>".join(_mermaid_text(line) for line in node.lines)
        lines.append(f"    {node.key}{opening}{label}{closing}:::{cls}")
    lines.extend(f"    {tail} --> {head}" for tail, head in view.edges)
    lines.extend(_mermaid_class(cls, style) for cls, style in used.items())
    return "\n".join(lines) + "\n"


# -- the entry point ------------------------------------------------------------------------
def visualize(
    graph: nx.DiGraph | None,
    snapshot: RunSnapshot | None = None,
    *,
    rankdir: str = DEFAULT_RANKDIR,
    legend: bool = False,
    filename: str | None = None,
    format: str | None = None,
    styles: StyleOverrides | None = None,
    around: Any = None,
    hops: int = 1,
    group_threshold: int | None = GROUP_THRESHOLD,
    renderer: str = "auto",
) -> Picture:
    """A :class:`~.render.Picture` of the workflow; with ``filename`` also written to disk
    (``format`` from the extension, or appended as the extension when it has none)."""
    from .render import Picture

    view = build_view(graph, snapshot, rankdir=rankdir, around=around, hops=hops,
                      group_threshold=group_threshold)
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
