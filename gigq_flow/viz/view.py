"""The view model of a workflow picture: which nodes and edges to draw, their labels,
tooltips and statuses, in a stable order.

:func:`build_view` turns ``(graph, RunSnapshot | None)`` into a :class:`GraphView`: a
node per job, a group node for many instances of one task, and a node per map that
stands for its items too (:mod:`.maps`) unless they are asked for. :mod:`.dot` and
:mod:`.mermaid` serialise a view; :mod:`.draw` makes pictures of it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..checks import check_int
from ..errors import ConfigurationError, JobNotFoundError
from ..job_status import JobStatus
from ..snapshot import JobState, RunSnapshot
from .maps import map_lines, map_tooltip, progress_of, reserve_lines
from .styles import CACHED, DEFAULT_RANKDIR, RANKDIRS, StyleKey, look_of
from .text import counts_text, first_line, format_duration, short_id

if TYPE_CHECKING:
    import networkx as nx

GROUP_THRESHOLD = 100
"""Above this many jobs in the picture, tasks with many instances collapse into groups."""
GROUP_MIN_INSTANCES = 3
"""A task collapses into a group node when it has at least this many instances."""

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
    cached: int = 0
    """How many of its jobs are completed ones that reused an earlier result (a job: 0 or 1)."""
    is_map: bool = False
    """The node draws a map: its label counts its items, which change as they run."""
    reserve: tuple[str, ...] = ()
    """A map's widest label: the live panel lays the node out with it, then rewrites
    the text as the counts change."""

    @property
    def look(self) -> StyleKey | None:
        """The style key the node is drawn with: its status, or ``"cached"`` when every
        job it draws completed by reusing an earlier result; None before submission."""
        if self.status is None:
            return None
        drawn = sum(n for _, n in self.counts) if self.counts else 1
        return look_of(self.status, 0 < self.cached == drawn)

    def bands(self) -> tuple[tuple[StyleKey, int], ...]:
        """A group's member counts by look: its completed members split into those that
        ran and those that reused a result (the stripes of a group node)."""
        found: list[tuple[StyleKey, int]] = []
        for status, n in self.counts:
            if status is JobStatus.COMPLETED and self.cached:
                if n > self.cached:
                    found.append((status, n - self.cached))
                found.append((CACHED, self.cached))
            else:
                found.append((status, n))
        return tuple(found)


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
    """job id -> key of the node that draws it (a map's node draws its items, unless
    they were expanded)."""

    @property
    def cached(self) -> int:
        """How many of the jobs drawn reused an earlier result."""
        return sum(node.cached for node in self.nodes)


def reused(job: JobState) -> bool:
    """True for a completed job that reused an earlier run's result instead of running."""
    return job.cached and job.status is JobStatus.COMPLETED


def final_duration(job: JobState) -> float | None:
    """The duration of a finished attempt; None while running or never started
    (so that the same state always gives the same label)."""
    return None if job.status is JobStatus.RUNNING else job.duration


def job_detail(job: JobState) -> str:
    """The second label line: duration once known (``cached`` for a reused result, which
    took no time to run), attempts when more than one."""
    parts = []
    duration = CACHED.value if reused(job) else format_duration(final_duration(job))
    if duration:
        parts.append(duration)
    if job.attempts > 1:
        parts.append(f"{job.attempts} attempts")
    return " · ".join(parts)


def job_tooltip(job: JobState) -> str:
    """The first line of the error, else name and status (``completed · cached from job
    <short id>`` for a reused result)."""
    if reused(job) and job.cached_from is not None:
        return f"{job.name}: {status_label(job)} from job {short_id(job.cached_from)}"
    return first_line(job.error) or f"{job.name}: {job.status.value}"


def status_label(job: JobState) -> str:
    """``completed · cached`` for a reused result, else the status."""
    return f"{job.status.value} · {CACHED.value}" if reused(job) else job.status.value


def group_status(counts: Mapping[JobStatus, int]) -> JobStatus:
    return next(status for status in _GROUP_PRIORITY if counts.get(status))


# -- building the view ------------------------------------------------------------------
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
    check_int("hops", hops, minimum=0)
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
    expand_maps: bool = False,
) -> GraphView:
    """The nodes and edges to draw.

    ``graph`` has a node per job id with a ``name`` attribute (``Workflow.graph``);
    with only a ``snapshot`` the structure comes from it. ``around`` (a Job, job id
    or unique task name) keeps the jobs within ``hops`` edges of it. When more than
    ``group_threshold`` jobs remain (None: never), each task with at least
    :data:`GROUP_MIN_INSTANCES` instances becomes one group node. ``compact`` keeps
    labels to the name (the live panel lays out once, so its labels must not change).

    A map is one node labelled with its items' progress (``square ×120`` over ``37
    done, 2 failed``) that stands for its items; ``expand_maps=True`` draws the items
    too, each a node (or, past ``group_threshold``, one group node per map, named
    ``square[i]``), between the map's parent and the map, which collects them.
    """
    if rankdir not in RANKDIRS:
        raise ConfigurationError(f"rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if group_threshold is not None:
        check_int("group_threshold", group_threshold, minimum=0)
    if graph is None:
        if snapshot is None:
            raise ConfigurationError("build_view() needs a graph, a snapshot or both")
        graph = snapshot.to_graph()
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

    maps, items_of = _maps(graph, states, order)
    over = {map_id: _over(graph, map_id, items_of.get(map_id, ()), task_name)
            for map_id in maps}
    if not expand_maps:  # a map's node stands for its items
        present = set(shown)
        folded = {item for map_id, items in items_of.items() if map_id in present
                  for item in items}
        shown = [job_id for job_id in shown if job_id not in folded]

    def group_name(job_id: str) -> str:
        state = states.get(job_id)
        if state is not None and state.map_of in maps:
            return f"{task_name(state.map_of)}[i]"  # the items of one map group together
        return task_name(job_id)

    grouped: dict[str, list[str]] = {}
    if group_threshold is not None and len(shown) > group_threshold:
        by_name: dict[str, list[str]] = {}
        for job_id in shown:
            by_name.setdefault(group_name(job_id), []).append(job_id)
        grouped = {n: ids for n, ids in by_name.items() if len(ids) >= GROUP_MIN_INSTANCES}

    nodes: list[ViewNode] = []
    node_of_job: dict[str, str] = {}
    for job_id in shown:
        gname = group_name(job_id)
        if gname in grouped:
            members = grouped[gname]
            if members[0] != job_id:
                continue
            node = group_node(f"g{index[job_id]}", gname, members, states, compact)
        elif job_id in maps:
            items = items_of.get(job_id, ())
            node = map_node(f"j{index[job_id]}", job_id, task_name(job_id),
                            states.get(job_id), [states[item] for item in items],
                            over.get(job_id))
        else:
            node = job_node(f"j{index[job_id]}", job_id, task_name(job_id), graph,
                            states.get(job_id), compact)
        nodes.append(node)
        for member in node.job_ids:
            node_of_job[member] = node.key
    if not expand_maps:
        for map_id, items in items_of.items():
            if map_id in node_of_job:
                node_of_job.update((item, node_of_job[map_id]) for item in items)

    edges: set[tuple[str, str]] = set()
    for u, v in _edges(graph, items_of, node_of_job, expand_maps):
        if u in node_of_job and v in node_of_job and node_of_job[u] != node_of_job[v]:
            edges.add((node_of_job[u], node_of_job[v]))
    position = {node.key: i for i, node in enumerate(nodes)}
    summary = snapshot.summary() if snapshot is not None else (
        f"workflow {name!r}: {graph.number_of_nodes()} jobs, not submitted"
    )
    return GraphView(
        name=name, title=title, summary=summary, nodes=tuple(nodes),
        edges=tuple(sorted(edges, key=lambda e: (position[e[0]], position[e[1]]))),
        rankdir=rankdir, submitted=snapshot is not None, node_of_job=node_of_job,
    )


def _maps(graph: nx.DiGraph, states: Mapping[str, JobState],
          order: Sequence[str]) -> tuple[set[str], dict[str, list[str]]]:
    """The maps among the jobs, and each map's items in input order."""
    maps = {job_id for job_id in order
            if (states[job_id].is_map if job_id in states
                else bool(graph.nodes[job_id].get("map")))}
    items_of: dict[str, list[JobState]] = {}
    for state in states.values():
        if state.map_of in maps:
            items_of.setdefault(state.map_of, []).append(state)
    return maps, {map_id: [item.id for item in sorted(items, key=lambda j: j.map_index or 0)]
                  for map_id, items in items_of.items()}


def _over(graph: nx.DiGraph, map_id: str, items: Sequence[str],
          task_name: Callable[[str], str]) -> str | None:
    """The name of the job whose list a map maps over (its parent that is not its item)."""
    own = set(items)
    parents = [parent for parent in graph.predecessors(map_id) if parent not in own]
    return ", ".join(task_name(parent) for parent in parents) or None


def _edges(graph: nx.DiGraph, items_of: Mapping[str, Sequence[str]],
           node_of_job: Mapping[str, str], expand: bool) -> list[tuple[str, str]]:
    """The job edges to draw: as submitted, except that a map whose items are drawn
    takes its parent's edge through them (parent -> items -> map)."""
    drawn = {map_id: [item for item in items if item in node_of_job]
             for map_id, items in items_of.items()} if expand else {}
    own = {item: map_id for map_id, items in drawn.items() for item in items}
    found: list[tuple[str, str]] = []
    for u, v in graph.edges:
        if drawn.get(v) and own.get(u) != v:
            found.extend((u, item) for item in drawn[v])
        else:
            found.append((u, v))
    return found


def job_node(key: str, job_id: str, name: str, graph: nx.DiGraph | None,
             state: JobState | None, compact: bool) -> ViewNode:
    """The node of one job (``state`` None before submission)."""
    if state is None:
        function = ""
        if graph is not None and job_id in graph:
            function = graph.nodes[job_id].get("function", "")
        return ViewNode(key, f"job-{job_id}", name, (job_id,), None, (), (name,),
                        function or name)
    detail = "" if compact else job_detail(state)
    lines = (name, detail) if detail else (name,)
    return ViewNode(key, f"job-{job_id}", name, (job_id,), state.status, (), lines,
                    job_tooltip(state), int(reused(state)))


def map_node(key: str, job_id: str, name: str, state: JobState | None,
             items: Sequence[JobState], over: str | None) -> ViewNode:
    """The node of a map: its name and size over its items' progress, in the map's own
    look (running while items run)."""
    progress = progress_of(state, items) if state is not None else None
    lines = map_lines(name, state, progress, over)
    tooltip = map_tooltip(name, state, progress, over)
    reserve = reserve_lines(name, progress.size if progress is not None else None)
    return ViewNode(key, f"job-{job_id}", name, (job_id,),
                    progress.status if progress is not None else None, (), lines, tooltip,
                    int(state is not None and reused(state)), is_map=True, reserve=reserve)


def group_node(key: str, name: str, members: Sequence[str], states: Mapping[str, JobState],
               compact: bool) -> ViewNode:
    """The node of many instances of one task, with counts per status."""
    head = f"{name} ×{len(members)}"
    if not states:
        return ViewNode(key, f"group-{key}", name, tuple(members), None, (), (head,),
                        f"{len(members)} instances of {name}")
    tally: dict[JobStatus, int] = {}
    cached = 0
    for job_id in members:
        state = states.get(job_id)
        if state is not None:
            tally[state.status] = tally.get(state.status, 0) + 1
            cached += reused(state)
    counts = tuple((status, tally[status]) for status in JobStatus if tally.get(status))
    text = counts_text(counts, cached)
    lines = (head,) if compact else (head, text)
    errors = [first_line(states[j].error) for j in members if j in states and states[j].error]
    tooltip = f"{name}: {len(members)} jobs — {text}"
    if errors:
        tooltip += f"; first error: {errors[0]}"
    return ViewNode(key, f"group-{key}", name, tuple(members), group_status(tally), counts,
                    lines, first_line(tooltip), cached)
