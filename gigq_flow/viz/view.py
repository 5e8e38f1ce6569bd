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
from .grouping import GROUP_MAX_NODES, GROUP_THRESHOLD, group_labels
from .maps import map_lines, map_tooltip, progress_of, reserve_lines
from .styles import CACHED, DEFAULT_RANKDIR, RANKDIRS, StyleKey, look_of
from .text import counts_text, first_line, format_duration, short_id

if TYPE_CHECKING:
    import networkx as nx


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
class _Structure:
    """What the view reads of a DAG: each job's attributes (``name``, ``function``,
    ``map``) and its edges, from a ``Workflow.graph`` or straight from a snapshot (a
    run of 100,000 jobs draws without building a networkx graph of them)."""

    def __init__(self, graph: nx.DiGraph | None, snapshot: RunSnapshot | None) -> None:
        self.attrs: Mapping[str, Mapping[str, Any]]
        self.edges: list[tuple[str, str]]
        self._adjacency: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
        if graph is not None:
            self.attrs, self.edges = graph.nodes, list(graph.edges)
            self.name = str(graph.graph.get("name") or (snapshot.name if snapshot else "workflow"))
            return
        assert snapshot is not None
        self.attrs = {}  # a run's jobs are all in its snapshot
        self.name = snapshot.name
        self.edges = list(snapshot.edges)
        known = {job.id for job in snapshot.jobs} if snapshot.items_of else ()
        # items expanded after the run's edges were read still hang off their map
        self.edges.extend((job.id, job.map_of) for job in snapshot.jobs
                          if job.map_of is not None and job.map_of in known)

    def adjacency(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Parents and children of each job (built on first use)."""
        if self._adjacency is None:
            parents: dict[str, list[str]] = {}
            children: dict[str, list[str]] = {}
            for u, v in self.edges:
                parents.setdefault(v, []).append(u)
                children.setdefault(u, []).append(v)
            self._adjacency = (parents, children)
        return self._adjacency


def _ordered_ids(graph: nx.DiGraph | None, snapshot: RunSnapshot | None) -> list[str]:
    if snapshot is None:
        assert graph is not None
        return list(graph.nodes)
    ids = [job.id for job in snapshot.jobs]
    if graph is None:
        return ids
    seen = set(ids)
    return ids + [node for node in graph.nodes if node not in seen]


def _resolve(around: Any, ids: Sequence[str], name_of: Callable[[str], str]) -> str:
    job_id = getattr(around, "id", around)
    if isinstance(job_id, str) and job_id in set(ids):
        return job_id
    if isinstance(around, str):
        named = [job_id for job_id in ids if name_of(job_id) == around]
        if len(named) == 1:
            return named[0]
        if named:
            raise ConfigurationError(
                f"{len(named)} jobs are named {around!r}; pass around=<Job> or a job id"
            )
    raise JobNotFoundError(f"around={around!r} is neither a job, a job id nor a task name here")


def neighbourhood(graph: Any, centre: str, hops: int) -> set[str]:
    """``centre`` and the jobs at most ``hops`` edges upstream or downstream of it
    (``graph``: a networkx graph, or anything with ``predecessors`` and ``successors``)."""
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


class _Adjacent:
    """``predecessors`` and ``successors`` of a structure, as :func:`neighbourhood` reads them."""

    def __init__(self, structure: _Structure) -> None:
        self.parents, self.children = structure.adjacency()

    def predecessors(self, job_id: str) -> list[str]:
        return self.parents.get(job_id, [])

    def successors(self, job_id: str) -> list[str]:
        return self.children.get(job_id, [])


def build_view(
    graph: nx.DiGraph | None,
    snapshot: RunSnapshot | None = None,
    *,
    rankdir: str = DEFAULT_RANKDIR,
    around: Any = None,
    hops: int = 1,
    group_threshold: int | None = GROUP_THRESHOLD,
    max_nodes: int = GROUP_MAX_NODES,
    compact: bool = False,
    expand_maps: bool = False,
) -> GraphView:
    """The nodes and edges to draw.

    ``graph`` has a node per job id with a ``name`` attribute (``Workflow.graph``);
    with only a ``snapshot`` the structure comes from it. ``around`` (a Job, job id
    or unique task name) keeps the jobs within ``hops`` edges of it. When more than
    ``group_threshold`` jobs remain (None: never), jobs collapse into group nodes by
    the rule of :mod:`.grouping`, until at most ``max_nodes`` nodes remain. ``compact``
    keeps labels to the name (the live panel lays out once, so its labels must not
    change).

    A map is one node labelled with its items' progress (``square ×120`` over ``37
    done, 2 failed``) that stands for its items; ``expand_maps=True`` draws the items
    too, each a node (or, past ``group_threshold``, one group node per map, named
    ``square[i]``), between the map's parent and the map, which collects them.
    """
    if rankdir not in RANKDIRS:
        raise ConfigurationError(f"rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if group_threshold is not None:
        check_int("group_threshold", group_threshold, minimum=0)
    check_int("max_nodes", max_nodes, minimum=1)
    if graph is None and snapshot is None:
        raise ConfigurationError("build_view() needs a graph, a snapshot or both")
    structure = _Structure(graph, snapshot)
    states = {job.id: job for job in snapshot.jobs} if snapshot is not None else {}
    order = _ordered_ids(graph, snapshot)
    index = {job_id: i for i, job_id in enumerate(order)}
    name = structure.name
    title = name if snapshot is None else f"{name} — {snapshot.finished}/{snapshot.total} finished"

    def attr(job_id: str, key: str, default: Any) -> Any:
        node = structure.attrs.get(job_id)
        return default if node is None else node.get(key, default)

    def task_name(job_id: str) -> str:
        state = states.get(job_id)
        return state.name if state else str(attr(job_id, "name", job_id))

    def function(job_id: str) -> str:
        state = states.get(job_id)
        return state.function if state else str(attr(job_id, "function", "") or task_name(job_id))

    shown = order
    if around is not None:
        centre = _resolve(around, order, task_name)
        keep = neighbourhood(_Adjacent(structure), centre, hops)
        shown = [job_id for job_id in order if job_id in keep]
        title += f" (around {task_name(centre)}, {hops} hops)"

    maps, items_of = _maps(structure, states, order)
    over: dict[str, str | None] = {}
    if maps:
        parents = structure.adjacency()[0]
        over = {map_id: _over(parents.get(map_id, ()), items_of.get(map_id, ()), task_name)
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

    label_of: dict[str, str] = {}
    grouped: dict[str, list[str]] = {}
    if group_threshold is not None and len(shown) > group_threshold:
        labels = group_labels([group_name(job_id) for job_id in shown],
                              [function(job_id) for job_id in shown], max_nodes=max_nodes)
        for job_id, label in zip(shown, labels, strict=True):
            if label is not None:
                label_of[job_id] = label
                grouped.setdefault(label, []).append(job_id)

    nodes: list[ViewNode] = []
    node_of_job: dict[str, str] = {}
    for job_id in shown:
        label = label_of.get(job_id)
        if label is not None:
            members = grouped[label]
            if members[0] != job_id:
                continue
            node = group_node(f"g{index[job_id]}", label, members, states, compact)
        elif job_id in maps:
            items = items_of.get(job_id, ())
            node = map_node(f"j{index[job_id]}", job_id, task_name(job_id),
                            states.get(job_id), [states[item] for item in items],
                            over.get(job_id))
        else:
            node = job_node(f"j{index[job_id]}", job_id, task_name(job_id),
                            function(job_id) if job_id not in states else "",
                            states.get(job_id), compact)
        nodes.append(node)
        for member in node.job_ids:
            node_of_job[member] = node.key
    if not expand_maps:
        for map_id, items in items_of.items():
            if map_id in node_of_job:
                node_of_job.update((item, node_of_job[map_id]) for item in items)

    edges: set[tuple[str, str]] = set()
    for u, v in _edges(structure.edges, items_of, node_of_job, expand_maps):
        tail, head = node_of_job.get(u), node_of_job.get(v)
        if tail is not None and head is not None and tail != head:
            edges.add((tail, head))
    position = {node.key: i for i, node in enumerate(nodes)}
    summary = snapshot.summary() if snapshot is not None else (
        f"workflow {name!r}: {len(order)} jobs, not submitted"
    )
    return GraphView(
        name=name, title=title, summary=summary, nodes=tuple(nodes),
        edges=tuple(sorted(edges, key=lambda e: (position[e[0]], position[e[1]]))),
        rankdir=rankdir, submitted=snapshot is not None, node_of_job=node_of_job,
    )


def _maps(structure: _Structure, states: Mapping[str, JobState],
          order: Sequence[str]) -> tuple[set[str], dict[str, list[str]]]:
    """The maps among the jobs, and each map's items in input order."""
    maps = {job_id for job_id in order
            if (states[job_id].is_map if job_id in states
                else bool(structure.attrs.get(job_id, {}).get("map")))}
    items_of: dict[str, list[JobState]] = {}
    if maps:
        for state in states.values():
            if state.map_of in maps:
                items_of.setdefault(state.map_of, []).append(state)
    return maps, {map_id: [item.id for item in sorted(items, key=lambda j: j.map_index or 0)]
                  for map_id, items in items_of.items()}


def _over(parents: Sequence[str], items: Sequence[str],
          task_name: Callable[[str], str]) -> str | None:
    """The name of the job whose list a map maps over (its parent that is not its item)."""
    own = set(items)
    return ", ".join(task_name(parent) for parent in parents if parent not in own) or None


def _edges(job_edges: Sequence[tuple[str, str]], items_of: Mapping[str, Sequence[str]],
           node_of_job: Mapping[str, str], expand: bool) -> Sequence[tuple[str, str]]:
    """The job edges to draw: as submitted, except that a map whose items are drawn
    takes its parent's edge through them (parent -> items -> map)."""
    drawn = {map_id: [item for item in items if item in node_of_job]
             for map_id, items in items_of.items()} if expand else {}
    if not any(drawn.values()):
        return job_edges
    own = {item: map_id for map_id, items in drawn.items() for item in items}
    found: list[tuple[str, str]] = []
    for u, v in job_edges:
        if drawn.get(v) and own.get(u) != v:
            found.extend((u, item) for item in drawn[v])
        else:
            found.append((u, v))
    return found


def job_node(key: str, job_id: str, name: str, function: str,
             state: JobState | None, compact: bool) -> ViewNode:
    """The node of one job (``state`` None before submission, its tooltip ``function``)."""
    if state is None:
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
    error = None
    for job_id in members:
        state = states.get(job_id)
        if state is not None:
            tally[state.status] = tally.get(state.status, 0) + 1
            cached += reused(state)
            error = error or state.error
    return tally_node(key, name, members, tally, cached, error, compact)


def tally_node(key: str, name: str, members: Sequence[str], tally: Mapping[JobStatus, int],
               cached: int, error: str | None, compact: bool) -> ViewNode:
    """A group node from its members' counts per status, reused results and first error."""
    head = f"{name} ×{len(members)}"
    counts = tuple((status, tally[status]) for status in JobStatus if tally.get(status))
    text = counts_text(counts, cached)
    lines = (head,) if compact else (head, text)
    tooltip = f"{name}: {len(members)} jobs — {text}"
    if error:
        tooltip += f"; first error: {first_line(error)}"
    return ViewNode(key, f"group-{key}", name, tuple(members), group_status(tally), counts,
                    lines, first_line(tooltip), cached)
