"""The state of a run as plain data: what the pictures, the live panel and the CLI draw.

``WorkflowRun`` reads these from the queue; the views import only this module, never
the handles or a store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .job_status import JobStatus

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True, slots=True)
class JobState:
    """One job of a run as last read from the queue (slots: a snapshot holds one per job)."""

    id: str
    name: str
    function: str
    status: JobStatus
    attempts: int
    max_attempts: int
    started_at: str | None
    completed_at: str | None
    worker_id: str | None
    error: str | None
    cached_from: str | None = None
    """The job whose result this completed job reused (None: it ran)."""
    map_param: str | None = None
    """Set on a map's row: the parameter each item receives its element as."""
    map_size: int | None = None
    """A map's number of items, once its parent's list expanded it."""
    map_of: str | None = None
    """Set on a map's item: the map's job id."""
    map_index: int | None = None
    """An item's position in the list it maps over."""
    tags: tuple[str, ...] = ()
    updated_at: str | None = None
    """When the queue last wrote the job's state (what an incremental read compares)."""

    @property
    def is_map(self) -> bool:
        """The job is a map (``Workflow.map``): it runs once per element of its parent's list."""
        return self.map_param is not None

    @property
    def cached(self) -> bool:
        return self.cached_from is not None

    @property
    def duration(self) -> float | None:
        """Seconds from the start of the last attempt to its end (or to now while running)."""
        if not self.started_at:
            return None
        start = datetime.fromisoformat(self.started_at)
        if self.status is JobStatus.RUNNING:
            return (datetime.now() - start).total_seconds()
        if self.completed_at and self.completed_at >= self.started_at:
            return (datetime.fromisoformat(self.completed_at) - start).total_seconds()
        return None


@dataclass(frozen=True)
class RunSnapshot:
    """The state of every job of a run at one instant: what the picture, the panel and
    the CLI all draw from."""

    workflow_id: str
    name: str
    jobs: tuple[JobState, ...]
    edges: tuple[tuple[str, str], ...]
    read_at: str | None = None
    """When the read began, by the reader's clock (an incremental read starts from it)."""
    counts: dict[str, int] = field(init=False)
    items_of: dict[str, tuple[JobState, ...]] = field(init=False)
    """Map id -> its items in input order (only maps that expanded into some)."""
    cached: int = field(init=False)
    """How many completed jobs reused an earlier run's result."""
    changes: tuple[JobState, ...] | None = field(init=False, default=None, compare=False)
    """The jobs that differ from the snapshot this one updates (:meth:`updated`); None
    for a snapshot read whole."""
    _position: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts = {status.value: 0 for status in JobStatus}
        items: dict[str, list[JobState]] = {}
        cached = 0
        for job in self.jobs:
            counts[job.status.value] += 1
            cached += job.cached_from is not None
            if job.map_of is not None:
                items.setdefault(job.map_of, []).append(job)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "cached", cached)
        object.__setattr__(self, "items_of", {
            map_id: _in_input_order(found) for map_id, found in items.items()})
        object.__setattr__(self, "_position", {job.id: i for i, job in enumerate(self.jobs)})

    def job(self, job_id: str) -> JobState | None:
        """The job of that id, or None."""
        position = self._position.get(job_id)
        return None if position is None else self.jobs[position]

    def position(self, job_id: str) -> int:
        """The job's place in submission order."""
        return self._position[job_id]

    def updated(self, changed: list[JobState], read_at: str | None) -> RunSnapshot:
        """This snapshot with ``changed`` in place of the jobs of their ids (a job it did
        not have, a map's item expanded since, comes last), without going over the
        others: the live panel's refresh of a run of 100,000 jobs costs what changed."""
        jobs = list(self.jobs)
        position = self._position
        counts, cached = dict(self.counts), self.cached
        touched: set[str] = set()
        for job in changed:
            at = position.get(job.id)
            if at is None:
                if position is self._position:
                    position = dict(position)
                position[job.id] = len(jobs)
                jobs.append(job)
            else:
                old = jobs[at]
                counts[old.status.value] -= 1
                cached -= old.cached_from is not None
                jobs[at] = job
            counts[job.status.value] += 1
            cached += job.cached_from is not None
            if job.map_of is not None:
                touched.add(job.map_of)
        items_of = dict(self.items_of)
        for map_id in touched:
            ids = {item.id for item in items_of.get(map_id, ())}
            ids.update(job.id for job in changed if job.map_of == map_id)
            items_of[map_id] = _in_input_order([jobs[position[i]] for i in ids])
        snapshot = object.__new__(RunSnapshot)
        for key, value in (("workflow_id", self.workflow_id), ("name", self.name),
                           ("jobs", tuple(jobs)), ("edges", self.edges), ("read_at", read_at),
                           ("counts", counts), ("items_of", items_of), ("cached", cached),
                           ("changes", tuple(changed)), ("_position", position)):
            object.__setattr__(snapshot, key, value)
        return snapshot

    @property
    def total(self) -> int:
        return len(self.jobs)

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.counts.items() if JobStatus(status).is_terminal)

    @property
    def done(self) -> bool:
        return self.finished == self.total

    @property
    def succeeded(self) -> bool:
        return self.counts[JobStatus.COMPLETED.value] == self.total

    def summary(self) -> str:
        return summary_text(self.name, self.workflow_id, self.counts, self.cached)

    def to_graph(self) -> nx.DiGraph:
        """The run's DAG: a node per job id (``name``, ``function``, ``map``: True for a
        map), an edge parent -> child (and item -> map for every item of a map)."""
        import networkx as nx  # on first use: workers and the CLI start without it

        graph = nx.DiGraph(name=self.name)
        for job in self.jobs:
            graph.add_node(job.id, name=job.name, function=job.function, map=job.is_map)
        graph.add_edges_from(self.edges)
        # items expanded after the run's edges were read still hang off their map
        graph.add_edges_from((job.id, job.map_of) for job in self.jobs
                             if job.map_of is not None and job.map_of in graph)
        return graph


@dataclass(frozen=True)
class RunOutline:
    """A run as its grouped picture reads it: each job's id, name, function and status
    in columns, no object per job (a run of 100,000 jobs draws from this in a fraction
    of the time its snapshot takes), and ``read``, which reads some jobs in full (the
    few the picture draws alone)."""

    workflow_id: str
    name: str
    ids: tuple[str, ...]
    names: tuple[str, ...]
    functions: tuple[str, ...]
    statuses: tuple[JobStatus, ...]
    cached: tuple[bool, ...]
    """Each job: a completed one that reused a result (or one that will, its source set)."""
    erred: tuple[bool, ...]
    """Each job: it has an error."""
    edges: tuple[tuple[str, str], ...]
    read: Callable[[Sequence[str]], dict[str, JobState]] = field(repr=False, compare=False)
    has_maps: bool = False

    def summary(self, counts: Mapping[JobStatus, int] | None = None) -> str:
        """As ``RunSnapshot.summary`` (``counts``: the statuses counted already)."""
        counts = Counter(self.statuses) if counts is None else counts
        return summary_text(self.name, self.workflow_id,
                            {status.value: counts.get(status, 0) for status in JobStatus},
                            sum(self.cached))


def summary_text(name: str, workflow_id: str, counts: dict[str, int], cached: int) -> str:
    """``workflow 'w' (<id>): 3/5 finished; 3 completed (1 cached), 2 pending``."""
    shown = ", ".join(
        f"{n} {status}" + (f" ({cached} cached)"
                           if status == JobStatus.COMPLETED.value and cached else "")
        for status, n in counts.items() if n)
    finished = sum(n for status, n in counts.items() if JobStatus(status).is_terminal)
    return (f"workflow {name!r} ({workflow_id}): "
            f"{finished}/{sum(counts.values())} finished; {shown or 'no jobs'}")


def _in_input_order(items: list[JobState]) -> tuple[JobState, ...]:
    return tuple(sorted(items, key=lambda job: job.map_index or 0))


@dataclass(frozen=True)
class Attempt:
    """One execution of a job of a run: its number among the job's attempts, the worker,
    its status (a job status, or ``lost``/``interrupted``), start and end (``now`` while
    it runs) and error."""

    id: str
    job_id: str
    name: str
    number: int
    worker: str
    status: str
    start: datetime
    end: datetime
    error: str
