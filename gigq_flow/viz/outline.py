"""The grouped view of a large run from its outline (:class:`~gigq_flow.snapshot.RunOutline`):
the picture :func:`~.view.build_view` draws, from columns rather than an object per job,
reading in full only the jobs drawn alone and the first error of each group."""

from __future__ import annotations

from collections import Counter

from ..checks import check_int
from ..errors import ConfigurationError
from ..job_status import JobStatus
from ..snapshot import RunOutline
from .grouping import GROUP_MAX_NODES, GROUP_THRESHOLD, group_labels
from .styles import DEFAULT_RANKDIR, RANKDIRS
from .view import GraphView, ViewNode, job_node, tally_node


def outline_view(outline: RunOutline, *, rankdir: str = DEFAULT_RANKDIR,
                 group_threshold: int | None = GROUP_THRESHOLD,
                 max_nodes: int = GROUP_MAX_NODES) -> GraphView:
    """The view of a run without maps, grouped as ``build_view`` groups it."""
    if rankdir not in RANKDIRS:
        raise ConfigurationError(f"rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if group_threshold is not None:
        check_int("group_threshold", group_threshold, minimum=0)
    check_int("max_nodes", max_nodes, minimum=1)
    if outline.has_maps:
        raise ConfigurationError("a run with maps draws from its snapshot")
    ids, total = outline.ids, len(outline.ids)
    if group_threshold is not None and total > group_threshold:
        labels = group_labels(outline.names, outline.functions, max_nodes=max_nodes)
    else:
        labels = [None] * total
    members: dict[str, list[int]] = {}
    alone: list[int] = []
    for i, label in enumerate(labels):
        if label is None:
            alone.append(i)
        else:
            members.setdefault(label, []).append(i)
    erred = {label: next((i for i in found if outline.erred[i]), None)
             for label, found in members.items()}
    states = outline.read([ids[i] for i in alone] +
                          [ids[i] for i in erred.values() if i is not None])
    keyed: list[tuple[int, ViewNode]] = []
    for i in alone:
        keyed.append((i, job_node(f"j{i}", ids[i], outline.names[i], "", states.get(ids[i]),
                                  False)))
    for label, found in members.items():
        tally: dict[JobStatus, int] = {}
        cached = 0
        for i in found:
            status = outline.statuses[i]
            tally[status] = tally.get(status, 0) + 1
            cached += outline.cached[i] and status is JobStatus.COMPLETED
        first = erred[label]
        error = states[ids[first]].error if first is not None and ids[first] in states else None
        keyed.append((found[0], tally_node(f"g{found[0]}", label, [ids[i] for i in found],
                                           tally, cached, error, False)))
    nodes = tuple(node for _, node in sorted(keyed, key=lambda pair: pair[0]))
    node_of_job = {job_id: node.key for node in nodes for job_id in node.job_ids}
    position = {node.key: i for i, node in enumerate(nodes)}
    edges = {(node_of_job[u], node_of_job[v]) for u, v in outline.edges}  # jobs of the run
    counts = Counter(outline.statuses)
    finished = sum(n for status, n in counts.items() if status.is_terminal)
    return GraphView(
        name=outline.name, title=f"{outline.name} — {finished}/{total} finished",
        summary=outline.summary(counts), nodes=nodes,
        edges=tuple(sorted(((u, v) for u, v in edges if u != v),
                           key=lambda e: (position[e[0]], position[e[1]]))),
        rankdir=rankdir, submitted=True, node_of_job=node_of_job,
    )
