"""The state of a run as plain data: what the pictures, the live panel and the CLI draw.

``WorkflowRun`` reads these from the queue; the views import only this module, never
the handles or a store.
"""

from __future__ import annotations

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
    counts: dict[str, int] = field(init=False)
    items_of: dict[str, tuple[JobState, ...]] = field(init=False)
    """Map id -> its items in input order (only maps that expanded into some)."""

    def __post_init__(self) -> None:
        counts = {status.value: 0 for status in JobStatus}
        items: dict[str, list[JobState]] = {}
        for job in self.jobs:
            counts[job.status.value] += 1
            if job.map_of is not None:
                items.setdefault(job.map_of, []).append(job)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "items_of", {
            map_id: tuple(sorted(found, key=lambda job: job.map_index or 0))
            for map_id, found in items.items()})

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

    @property
    def cached(self) -> int:
        """How many completed jobs reused an earlier run's result."""
        return sum(1 for job in self.jobs if job.cached)

    def summary(self) -> str:
        shown = ", ".join(
            f"{n} {status}" + (f" ({self.cached} cached)"
                               if status == JobStatus.COMPLETED.value and self.cached else "")
            for status, n in self.counts.items() if n)
        return (f"workflow {self.name!r} ({self.workflow_id}): "
                f"{self.finished}/{self.total} finished; {shown or 'no jobs'}")

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
