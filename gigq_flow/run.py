"""``WorkflowRun``: the handle on a submitted workflow; it reads the status snapshots
every view draws (:mod:`.snapshot`)."""

from __future__ import annotations

import json
import math
import operator
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .codec import decode_payload, result_of
from .errors import JobNotFoundError, WorkflowNotFoundError
from .gc_pause import collector_paused
from .job import CACHE_NEVER, Job, cache_mode, new_id
from .job_status import JobStatus
from .results import group_by_name
from .snapshot import Attempt, JobState, RunOutline, RunSnapshot
from .store import NewJob, WorkflowRecord

if TYPE_CHECKING:
    import networkx as nx

    from .job_queue import JobQueue
    from .viz.render import Picture
    from .viz.widget import RunPanel

WAIT_POLL_SECONDS = 0.05
CHANGE_SLACK = 0.5
"""Seconds before the last read from which ``snapshot(since=...)`` reads again: a write
stamped just before that read may commit just after it."""
COUNT_SHARE = 10
"""``wait()`` leaves the workers this many times as long as its last count took."""


class WorkflowRun:
    """A submitted workflow: its status, results and pictures, read live from the queue.

    Any process can rebuild one with ``queue.get_workflow(workflow_id)``.
    """

    def __init__(self, queue: JobQueue, workflow_id: str, *,
                 jobs: Sequence[Job] | None = None) -> None:
        self.queue = queue
        self._store = queue.store
        record = self._store.get_workflow(workflow_id)
        if record is None:
            raise WorkflowNotFoundError(f"no workflow with id {workflow_id!r} in {queue.db_path}")
        self.id: str = record["id"]
        self.name: str = record["name"]
        self.created_at: str = record["created_at"]
        self._edges: tuple[tuple[str, str], ...] | None = None
        """Read by the first snapshot: a run that is only waited for never holds them."""
        self._jobs = jobs
        """The jobs as the submitting process holds them (a run without maps), whose
        edges, names and functions the pictures take rather than read them back."""
        self._in_queue_order: tuple[Job, ...] | None = None

    # -- state ------------------------------------------------------------------------------
    def snapshot(self, since: RunSnapshot | None = None) -> RunSnapshot:
        """Every job's state now, in submission order.

        ``since`` (an earlier snapshot of this run) reads only the jobs written since it
        was read (give or take :data:`CHANGE_SLACK` seconds): the snapshot returned
        lists them in ``changes``. When none changed while jobs are unfinished, the
        counts per status are checked as well, and differing counts read the run whole
        (a writer whose clock is behind the reader's is caught that way).
        """
        read_at = datetime.now()
        edges = self._read_edges()  # before the jobs: a map's items read later are in them
        if since is None or since.workflow_id != self.id or since.read_at is None:
            # Each row brings its own copy of every string: one object per repeated name,
            # function and worker keeps a large snapshot smaller.
            shared: dict[Any, Any] = {}
            with collector_paused():
                jobs = tuple(_state(row, shared) for row in self._store.workflow_jobs(self.id))
            return RunSnapshot(self.id, self.name, jobs, edges,
                               read_at.isoformat(timespec="microseconds"))
        start = datetime.fromisoformat(since.read_at) - timedelta(seconds=CHANGE_SLACK)
        rows = self._store.workflow_jobs(self.id, start.isoformat(timespec="microseconds"))
        changed = []
        for row in rows:
            known = since.job(row["id"])
            if known is not None and known.updated_at == row["updated_at"]:
                continue  # read again within the slack: as it was
            state = _state(row)
            if state != known:
                changed.append(state)
        if not changed and not since.done:
            counts = {status: n for status, n in since.counts.items() if n}
            if self._store.workflow_counts(self.id) != counts:
                return self.snapshot()
        return since.updated(changed, read_at.isoformat(timespec="microseconds"))

    def _read_edges(self) -> tuple[tuple[str, str], ...]:
        """The run's edges, read once: a run that is only waited for never holds them."""
        if self._edges is None:
            known = self._submitted()
            self._edges = tuple(
                [(parent, job.id) for job in known for parent in dict.fromkeys(job.dependencies)]
                if known is not None else self._store.workflow_edges(self.id))
        return self._edges

    def _submitted(self) -> tuple[Job, ...] | None:
        """The submitting process's jobs in the order the queue lists them (creation
        time, then place in the workflow), or None in any other process."""
        if self._in_queue_order is None and self._jobs is not None:
            jobs, created = self._jobs, [job.created_at for job in self._jobs]
            if not all(map(operator.le, created, created[1:])):  # made in another order
                jobs = [jobs[i] for i in sorted(range(len(jobs)), key=lambda i: (created[i], i))]
            self._in_queue_order = tuple(jobs)
        return self._in_queue_order

    def outline(self) -> RunOutline:
        """Every job's id, name, function and status in columns: what a grouped picture
        of a large run draws from (``visualize()`` reads it for a run without maps)."""
        known = self._submitted()
        rows = self._store.workflow_outline(self.id, names=known is None)
        if known is not None and len(rows) != len(known):  # some were cleared since
            known, rows = None, self._store.workflow_outline(self.id)
        columns = list(zip(*rows, strict=True)) if rows else [()] * (7 if known is None else 4)
        if known is None:
            ids, names, functions, statuses, cached, erred, mapped = columns
        else:
            ids, names = tuple(job.id for job in known), tuple(job.name for job in known)
            functions = _function_names(known)
            statuses, cached, erred, mapped = columns

        def read(job_ids: Sequence[str]) -> dict[str, JobState]:
            found = self._store.workflow_jobs_by_id(self.id, job_ids) if job_ids else []
            return {row["id"]: _state(row) for row in found}

        return RunOutline(self.id, self.name, ids, names, functions,
                          tuple(map(_STATUSES.__getitem__, statuses)),
                          tuple(map(bool, cached)), tuple(map(bool, erred)),
                          self._read_edges(), read, any(mapped))

    def status(self) -> dict[str, Any]:
        """``jobs`` (id -> status), ``tasks`` (name -> status, a list for shared names),
        ``counts`` per status, ``total`` and ``done``."""
        snap = self.snapshot()
        return {
            "jobs": {job.id: job.status.value for job in snap.jobs},
            "tasks": group_by_name((job.name, job.status.value) for job in snap.jobs),
            "counts": snap.counts,
            "total": snap.total,
            "done": snap.done,
        }

    @property
    def done(self) -> bool:
        """True when every job is terminal."""
        counts = self._store.workflow_counts(self.id)
        return not counts.get("pending") and not counts.get("running")

    @property
    def graph(self) -> nx.DiGraph:
        """The run's DAG: a node per job id (name, function), an edge parent -> child."""
        return self.snapshot().to_graph()

    def wait(self, timeout: float | None = None, progress: bool = False) -> bool:
        """Block until every job is terminal; False if ``timeout`` seconds pass first.

        ``progress=True`` shows a tqdm bar (a widget in notebooks).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = self._progress_bar() if progress else None
        try:
            while True:
                since = self._store.watch()
                counted = time.thread_time()  # its own work, not its waits for the GIL
                counts = self._store.workflow_counts(self.id)
                cost = time.thread_time() - counted
                total = sum(counts.values())
                unfinished = counts.get("pending", 0) + counts.get("running", 0)
                if bar is not None:
                    bar.update(total - unfinished - bar.n)
                if not unfinished:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                # Counting reads every job of the run: between two counts the workers get
                # at least COUNT_SHARE times as long (a completion wakes this loop).
                time.sleep(min(cost * COUNT_SHARE, remaining or math.inf))
                self._store.wait_for_work(
                    WAIT_POLL_SECONDS if remaining is None else min(WAIT_POLL_SECONDS, remaining),
                    since,
                )
        finally:
            if bar is not None:
                bar.close()

    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm  # a widget in notebooks; imported only when asked for

        return tqdm(total=sum(self._store.workflow_counts(self.id).values()),
                    desc=self.name, unit="job")

    # -- results ----------------------------------------------------------------------------
    def results(self, *, unpickle: bool = True) -> dict[str, Any]:
        """Task name -> result of the completed jobs (a list where tasks share a name);
        ``unpickle=False`` shows pickled results as a placeholder."""
        return group_by_name(
            (name, decode_payload(result, serializer, unpickle=unpickle,
                                  what=f"result of job {job_id}"))
            for job_id, name, result, serializer in self._store.workflow_results(self.id)
        )

    def result(self, job: Job | str) -> Any:
        """One job's result (None until it completes)."""
        job_id = job.id if isinstance(job, Job) else job
        row = self._store.get_job(job_id)  # one row, not a snapshot of the whole run
        if row is None or row["workflow_id"] != self.id:
            raise JobNotFoundError(f"job {job_id!r} is not part of workflow {self.name!r}")
        return result_of(row)

    def explain(self) -> dict[str, str | list[str]]:
        """Task name -> why the step ran or was reused (a list where tasks share a name):
        ``"cached (from run <id>)"``, or ``"ran: <reason>"`` (no earlier result, code
        changed, params changed, parents changed, cache off, recompute, ...). A step that
        did not run says its state (``"not run: upstream_failed"``, ``"pending"``)."""
        return group_by_name((row["name"], _reason(row))
                             for row in self._store.workflow_jobs(self.id))

    def rerun(self, cache: bool | str = True) -> WorkflowRun:
        """Submit a new run of the same steps, rebuilt from what the queue stored (any
        process can); any worker of the queue runs it. With ``cache=True`` the steps
        whose key matches are reused: after a failure, only the failed step and its
        descendants run."""
        mode = cache_mode(cache)
        definitions = self._store.workflow_definitions(self.id)
        new_ids = {job["id"]: new_id() for job in definitions}
        created_at = datetime.now().isoformat()
        jobs = [
            NewJob(
                id=new_ids[job["id"]], name=job["name"],
                function_module=job["function_module"], function_name=job["function_name"],
                params=job["params"], priority=job["priority"],
                dependencies=tuple(new_ids.get(dep, dep) for dep in job["dependencies"]),
                max_attempts=job["max_attempts"], timeout=job["timeout"],
                description=job["description"] or "", created_at=created_at,
                pass_parent_results=(None if job["pass_parent_results"] is None
                                     else bool(job["pass_parent_results"])),
                retry_delay=job["retry_delay"] or 0, serializer=job["serializer"] or "json",
                cache=CACHE_NEVER if job["cache"] == CACHE_NEVER else mode,
                cache_version=job["cache_version"], code_digest=job["code_digest"],
                map_param=job["map_param"], map_limit=job["map_limit"],
                tags=tuple(json.loads(job["tags"] or "[]")),
            )
            for job in definitions
        ]
        record = WorkflowRecord(id=str(uuid.uuid4()), name=self.name, created_at=created_at)
        self._store.submit(jobs, record)
        return WorkflowRun(self.queue, record.id)

    def cancel(self) -> int:
        """End every unfinished step of the run, running ones included (as
        ``JobQueue.cancel(id, running=True)``); returns how many."""
        return self._store.cancel_workflow(self.id)

    def logs(self, step: Job | str, attempt: int | None = None) -> str:
        """What a step of this run printed and logged (and its traceback), as
        ``JobQueue.get_logs``: ``step`` is a Job, a job id or a task name."""
        job_id = step.id if isinstance(step, Job) else step
        row = self._store.get_job(job_id)
        if row is not None and row["workflow_id"] == self.id:
            # by id, one row read: the live panel asks for a running step's logs often
            return self.queue.get_logs(job_id, attempt)
        jobs = self._store.workflow_jobs(self.id)
        ids = {job["id"] for job in jobs}
        if job_id not in ids:
            named = [job["id"] for job in jobs if job["name"] == job_id]
            if len(named) != 1:
                raise JobNotFoundError(
                    f"{job_id!r} is not a job of workflow {self.name!r}" if not named else
                    f"{len(named)} steps of workflow {self.name!r} are named {job_id!r}; "
                    f"pass one of their ids: {', '.join(named)}")
            job_id = named[0]
        return self.queue.get_logs(job_id, attempt)

    def failed(self) -> list[dict[str, Any]]:
        """The jobs that failed, timed out, were cancelled or upstream_failed, with errors."""
        return [
            {"id": job.id, "name": job.name, "status": job.status.value, "error": job.error}
            for job in self.snapshot().jobs
            if job.status.is_terminal and job.status is not JobStatus.COMPLETED
        ]

    def attempts(self, now: datetime | None = None) -> list[Attempt]:
        """Every attempt at the run's jobs, by start time; running ones end at ``now``."""
        now = now or datetime.now()
        numbers: dict[str, int] = {}
        found = []
        for row in self._store.workflow_executions(self.id):
            if not row["started_at"]:
                continue
            numbers[row["job_id"]] = numbers.get(row["job_id"], 0) + 1
            start = datetime.fromisoformat(row["started_at"])
            end = datetime.fromisoformat(row["completed_at"]) if row["completed_at"] else now
            found.append(Attempt(
                id=row["id"], job_id=row["job_id"], name=row["name"],
                number=numbers[row["job_id"]], worker=row["worker_id"] or "",
                status=row["status"] or "running", start=start, end=max(end, start),
                error=row["error"] or "",
            ))
        return found

    def close(self) -> None:
        """Close this thread's connection to the queue."""
        self._store.close()

    # -- pictures (gigq_flow.viz, imported on first use: import gigq_flow stays light) -----
    def visualize(self, **options: Any) -> Picture:
        """The DAG coloured by live status: a Picture that shows inline in Jupyter and
        ``save(path)``s svg/png/pdf. Options: ``rankdir``, ``legend``, ``filename``,
        ``format``, ``styles``, ``around``, ``hops``, ``group_threshold``, ``max_nodes``
        (the grouping rule's bound), ``expand_maps`` (a map is one node with its items'
        progress unless True), ``renderer`` (see :func:`gigq_flow.viz.draw.visualize`)."""
        with collector_paused():
            from .viz.draw import visualize

            plain = (options.get("around") is None and not options.get("expand_maps")
                     and options.get("group_threshold", 0) is not None)
            outline = self.outline() if plain else None
            if outline is not None and not outline.has_maps:
                return visualize(None, outline, **options)
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

        return timeline(self.snapshot(), self.attempts(), **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """SVG of the live DAG plus a text summary; never raises into a notebook display."""
        from .viz.draw import display_bundle

        return display_bundle(None, self.snapshot, f"<WorkflowRun {self.id}>")

    def __repr__(self) -> str:
        return f"<WorkflowRun {self.snapshot().summary()}>"


_STATUSES = {status.value: status for status in JobStatus}


def _function_names(jobs: Sequence[Job]) -> tuple[str, ...]:
    """Each job's function as ``module.name``, worked out once a function."""
    names: dict[Callable | str, str] = {}
    return tuple(names.get(job.function) or names.setdefault(
        job.function, f"{job.function_module}.{job.function_name}") for job in jobs)


def _state(row: dict[str, Any], shared: dict[Any, Any] | None = None) -> JobState:
    """A job's state from its ``workflow_jobs`` row; with ``shared``, repeated names,
    functions and workers are one object each."""
    def one(value: Any) -> Any:
        return value if shared is None else shared.setdefault(value, value)

    tags = row["tags"]
    return JobState(
        id=row["id"], name=one(row["name"]),
        function=one(f"{row['function_module']}.{row['function_name']}"),
        status=_STATUSES[row["status"]], attempts=row["attempts"] or 0,
        max_attempts=row["max_attempts"] or 1, started_at=row["started_at"],
        completed_at=row["completed_at"], worker_id=one(row["worker_id"]), error=row["error"],
        cached_from=row["cached_from"], map_param=row["map_param"],
        map_size=row["map_size"], map_of=row["map_of"], map_index=row["map_index"],
        tags=tuple(json.loads(tags)) if tags and tags != "[]" else (),
        updated_at=row["updated_at"],
    )


def _reason(row: dict[str, Any]) -> str:
    """Why a job of a run ran or was reused, from its stored row (see ``explain``)."""
    status = row["status"]
    if status == JobStatus.COMPLETED.value:
        if row["cache_note"]:
            return str(row["cache_note"])
        return "ran: cache off" if row["cache"] in (None, CACHE_NEVER) else "ran"
    if status in (JobStatus.FAILED.value, JobStatus.TIMEOUT.value):
        return f"ran: {status}"
    if status == JobStatus.RUNNING.value:
        return "running"
    if status == JobStatus.PENDING.value:
        return "pending"
    return f"not run: {status}"

