"""``WorkflowRun``: the handle on a submitted workflow, and the status snapshot every view reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import JobNotFoundError, WorkflowNotFoundError
from .job import Job, JobStatus
from .queue import result_of
from .serialization import loads

if TYPE_CHECKING:
    import networkx as nx

    from .queue import JobQueue
    from .viz.render import Picture
    from .viz.widget import RunPanel

WAIT_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class JobState:
    """One job of a run as last read from the queue."""

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

    def __post_init__(self) -> None:
        counts = {status.value: 0 for status in JobStatus}
        for job in self.jobs:
            counts[job.status.value] += 1
        object.__setattr__(self, "counts", counts)

    @property
    def total(self) -> int:
        return len(self.jobs)

    @property
    def finished(self) -> int:
        return sum(1 for job in self.jobs if job.status.is_terminal)

    @property
    def done(self) -> bool:
        return self.finished == self.total

    @property
    def succeeded(self) -> bool:
        return self.counts[JobStatus.COMPLETED.value] == self.total

    def summary(self) -> str:
        shown = ", ".join(f"{n} {status}" for status, n in self.counts.items() if n)
        return f"workflow {self.name!r} ({self.workflow_id}): {self.finished}/{self.total} finished; {shown or 'no jobs'}"


def by_name(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """name -> value; a name shared by several entries maps to the list of their values."""
    grouped: dict[str, list[Any]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}


class WorkflowRun:
    """A submitted workflow: its status, results and pictures, read live from the queue.

    Any process can rebuild one with ``queue.get_workflow(workflow_id)``.
    """

    def __init__(self, queue: JobQueue, workflow_id: str) -> None:
        record = queue.store.get_workflow(workflow_id)
        if record is None:
            raise WorkflowNotFoundError(f"no workflow with id {workflow_id!r} in {queue.db_path}")
        self.queue = queue
        self.id: str = record["id"]
        self.name: str = record["name"]
        self.created_at: str = record["created_at"]
        self._edges = tuple(queue.store.workflow_edges(workflow_id))

    # -- state ------------------------------------------------------------------------------
    def snapshot(self) -> RunSnapshot:
        """Every job's state now, in submission order."""
        jobs = tuple(
            JobState(
                id=row["id"], name=row["name"],
                function=f"{row['function_module']}.{row['function_name']}",
                status=JobStatus(row["status"]), attempts=row["attempts"] or 0,
                max_attempts=row["max_attempts"] or 1, started_at=row["started_at"],
                completed_at=row["completed_at"], worker_id=row["worker_id"], error=row["error"],
            )
            for row in self.queue.store.workflow_jobs(self.id)
        )
        return RunSnapshot(self.id, self.name, jobs, self._edges)

    def status(self) -> dict[str, Any]:
        """``jobs`` (id -> status), ``tasks`` (name -> status, a list for shared names),
        ``counts`` per status, ``total`` and ``done``."""
        snap = self.snapshot()
        return {
            "jobs": {job.id: job.status.value for job in snap.jobs},
            "tasks": by_name([(job.name, job.status.value) for job in snap.jobs]),
            "counts": snap.counts,
            "total": snap.total,
            "done": snap.done,
        }

    @property
    def done(self) -> bool:
        """True when every job is terminal."""
        counts = self.queue.store.workflow_counts(self.id)
        return not counts.get("pending") and not counts.get("running")

    @property
    def graph(self) -> nx.DiGraph:
        """The run's DAG: a node per job id (name, function), an edge parent -> child."""
        import networkx as nx  # imported on first use: workers and the CLI start faster

        graph = nx.DiGraph(name=self.name)
        for job in self.snapshot().jobs:
            graph.add_node(job.id, name=job.name, function=job.function)
        graph.add_edges_from(self._edges)
        return graph

    def wait(self, timeout: float | None = None, progress: bool = False) -> bool:
        """Block until every job is terminal; False if ``timeout`` seconds pass first.

        ``progress=True`` shows a tqdm bar (a widget in notebooks).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _progress_bar(self) if progress else None
        try:
            while True:
                since = self.queue.store.watch()
                counts = self.queue.store.workflow_counts(self.id)
                total = sum(counts.values())
                unfinished = counts.get("pending", 0) + counts.get("running", 0)
                if bar is not None:
                    bar.update(total - unfinished - bar.n)
                if not unfinished:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.queue.store.wait_for_work(
                    WAIT_POLL_SECONDS if remaining is None else min(WAIT_POLL_SECONDS, remaining),
                    since,
                )
        finally:
            if bar is not None:
                bar.close()

    # -- results ----------------------------------------------------------------------------
    def results(self) -> dict[str, Any]:
        """Task name -> result of the completed jobs (a list where tasks share a name)."""
        return by_name([
            (row["name"], loads(row["result"], row["serializer"], what=f"result of job {row['id']}"))
            for row in self.queue.store.workflow_results(self.id)
        ])

    def result(self, job: Job | str) -> Any:
        """One job's result (None until it completes)."""
        job_id = job.id if isinstance(job, Job) else job
        row = self.queue.store.get_job(job_id)  # one row, not a snapshot of the whole run
        if row is None or row["workflow_id"] != self.id:
            raise JobNotFoundError(f"job {job_id!r} is not part of workflow {self.name!r}")
        return result_of(row)

    def failed(self) -> list[dict[str, Any]]:
        """The jobs that failed, timed out, were cancelled or upstream_failed, with errors."""
        return [
            {"id": job.id, "name": job.name, "status": job.status.value, "error": job.error}
            for job in self.snapshot().jobs
            if job.status.is_terminal and job.status is not JobStatus.COMPLETED
        ]

    # -- pictures (gigq_flow.viz, imported on first use) -----------------------------------
    def visualize(self, **options: Any) -> Picture:
        """The DAG coloured by live status: a Picture that shows inline in Jupyter and
        ``save(path)``s svg/png/pdf. Options: ``rankdir``, ``legend``, ``filename``,
        ``format``, ``styles``, ``around``, ``hops``, ``group_threshold``, ``renderer``
        (see :func:`gigq_flow.viz.graph.visualize`)."""
        from .viz.graph import visualize

        return visualize(None, self.snapshot(), **options)

    def widget(self, **options: Any) -> RunPanel:
        """A live ipywidgets panel of this run, refreshed by a background thread
        (see :class:`gigq_flow.viz.widget.RunPanel` for options)."""
        from .viz.widget import RunPanel

        return RunPanel(self, **options)

    def timeline(self, **options: Any) -> Picture:
        """A Gantt picture of every attempt: start, end, worker, status
        (see :func:`gigq_flow.viz.timeline.timeline`)."""
        from .viz.timeline import timeline

        return timeline(self, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """SVG of the live DAG plus a text summary; never raises into a notebook display."""
        from .viz.graph import display_bundle

        return display_bundle(None, self.snapshot, f"<WorkflowRun {self.id}>")

    def __repr__(self) -> str:
        return f"<WorkflowRun {self.snapshot().summary()}>"


def _progress_bar(run: WorkflowRun) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=sum(run.queue.store.workflow_counts(run.id).values()),
                desc=run.name, unit="job")
