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
    # Counted by label and status in one pass; the searches below skip runs without
    # reused results or errors (most).
    tallies: dict[str, dict[JobStatus, int]] = {label: {} for label in members}
    for (label, status), n in Counter(zip(labels, outline.statuses, strict=True)).items():
        if label is not None:
            tallies[label][status] = n
    cached = Counter(label for label, reused, status in zip(
        labels, outline.cached, outline.statuses, strict=True)
        if reused and status is JobStatus.COMPLETED) if any(outline.cached) else Counter()
    has_errors = any(outline.erred)
    erred = {label: next((i for i in found if outline.erred[i]), None) if has_errors else None
             for label, found in members.items()}
    states = outline.read([ids[i] for i in alone] +
                          [ids[i] for i in erred.values() if i is not None])
    keyed: list[tuple[int, ViewNode]] = []
    for i in alone:
        keyed.append((i, job_node(f"j{i}", ids[i], outline.names[i], "", states.get(ids[i]),
                                  False)))
    for label, found in members.items():
        first = erred[label]
        error = states[ids[first]].error if first is not None and ids[first] in states else None
        keyed.append((found[0], tally_node(f"g{found[0]}", label, [ids[i] for i in found],
                                           tallies[label], cached[label], error, False)))
    nodes = tuple(node for _, node in sorted(keyed, key=lambda pair: pair[0]))
    key_of: dict[str | None, str] = {None: ""}  # a job drawn alone: its own key, next
    key_of.update((label, f"g{found[0]}") for label, found in members.items())
    node_of_job = dict(zip(ids, map(key_of.__getitem__, labels), strict=True))
    node_of_job.update((ids[i], f"j{i}") for i in alone)
    position = {node.key: i for i, node in enumerate(nodes)}
    parents, children = zip(*outline.edges, strict=True) if outline.edges else ((), ())
    edges = set(zip(map(node_of_job.__getitem__, parents),  # jobs of the run
                    map(node_of_job.__getitem__, children), strict=True))
    counts = Counter(outline.statuses)
    finished = sum(n for status, n in counts.items() if status.is_terminal)
    return GraphView(
        name=outline.name, title=f"{outline.name} — {finished}/{total} finished",
        summary=outline.summary(counts), nodes=nodes,
        edges=tuple(sorted(((u, v) for u, v in edges if u != v),
                           key=lambda e: (position[e[0]], position[e[1]]))),
        rankdir=rankdir, submitted=True, node_of_job=node_of_job,
    )
