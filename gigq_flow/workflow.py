"""``Workflow``: build a DAG of jobs, check it with networkx, submit it atomically."""

from __future__ import annotations

import graphlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .checks import check_int
from .decorators import TaskWrapper
from .errors import (
    ConfigurationError,
    CycleError,
    DuplicateJobError,
    SelfDependencyError,
    UnknownDependencyError,
)
from .gc_pause import collector_paused
from .job import Job
from .job_queue import JobQueue
from .run import WorkflowRun
from .serialization import SERIALIZERS
from .worker import Worker

if TYPE_CHECKING:
    import networkx as nx

    from .viz.render import Picture
    from .viz.widget import RunPanel

DEFAULT_DB_PATH = "gigq_flow.db"
DEFAULT_RUN_WORKERS = 4


def default_queue() -> JobQueue:
    """The embedded default: a SQLite file ``gigq_flow.db`` in the working directory."""
    return JobQueue(os.path.join(os.getcwd(), DEFAULT_DB_PATH))


class Workflow:
    """A named DAG of jobs. Add jobs or plain functions, ``validate()``, then ``submit()``
    (or ``run()`` in a notebook). ``serializer="pickle"`` makes every job of the workflow
    pickle its params and results (trusted database files only)."""

    def __init__(self, name: str, *, serializer: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"workflow name must be a non-empty string, got {name!r}")
        if serializer is not None and serializer not in SERIALIZERS:
            raise ConfigurationError(
                f"serializer must be one of {sorted(SERIALIZERS)}, got {serializer!r}"
            )
        self.name = name
        self.serializer = serializer
        self.jobs: list[Job] = []
        self.job_map: dict[str, Job] = {}
        self.last_run: WorkflowRun | None = None
        """The run handle of the last ``submit()``/``run()`` (None before)."""

    # -- building ---------------------------------------------------------------------------
    def add_job(self, job: Job, depends_on: Sequence[Job | str] | None = None) -> Job:
        """Add a Job; ``depends_on`` takes Jobs of this workflow and ids of queued jobs."""
        if not isinstance(job, Job):
            raise ConfigurationError(
                f"add_job() takes a Job, got {type(job).__name__}; use add_task() for functions"
            )
        if job.id in self.job_map:
            raise DuplicateJobError(
                f"job {job.name!r} ({job.id}) was already added to workflow {self.name!r}; "
                "create a new Job (or call add_task again) for a second instance"
            )
        if depends_on is not None:
            job.dependencies = list(dict.fromkeys(_dependency_id(dep) for dep in depends_on))
        if self.serializer is not None:
            job.serializer = self.serializer
        self.jobs.append(job)
        self.job_map[job.id] = job
        return job

    def add_task(
        self,
        fn: Callable,
        params: dict[str, Any] | None = None,
        depends_on: Sequence[Job | str] | None = None,
        pass_parent_results: bool | None = None,
        **job_options: Any,
    ) -> Job:
        """Add a ``@task`` or a plain module-level function, called with ``params``.

        ``job_options`` (name, priority, max_attempts, timeout, description,
        retry_delay, serializer, cache, cache_version, tags) override the task's own
        options.
        """
        if isinstance(fn, TaskWrapper):
            options = {**fn.options, **job_options}
            function = fn.__wrapped__
        else:
            options = {"name": getattr(fn, "__name__", None), **job_options}
            function = fn
        job = Job(
            function=function, params=params, pass_parent_results=pass_parent_results, **options
        )
        return self.add_job(job, depends_on=depends_on)

    def map(
        self,
        fn: Callable,
        over: Job | str,
        params: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        item_param: str = "item",
        max_active: int | None = None,
        **job_options: Any,
    ) -> Job:
        """Run ``fn`` once per element of ``over``'s result (a list), decided when
        ``over`` completes: item ``i`` is a job named ``f"{name}[{i}]"`` called with
        ``item=<element>`` (or ``item_param``) and ``params``; ``job_options`` apply to
        each item. The returned Job stands for the whole map: it completes once every
        item did, with their results in input order, and can be depended on or mapped
        over again. An empty list completes it with ``[]``; a result that is not a list
        fails it. ``max_active`` caps how many of its items run at once, across every
        worker (a limit on a tag of the map's own, see ``JobQueue.set_limit``)."""
        if not isinstance(item_param, str) or not item_param.isidentifier():
            raise ConfigurationError(
                f"item_param must be a parameter name, got {item_param!r}"
            )
        if max_active is not None:
            check_int("max_active", max_active, minimum=1)
        if item_param in (params or {}) or item_param == "parent_results":
            raise ConfigurationError(
                f"item_param {item_param!r} is also given in params (or is "
                "parent_results); choose another item_param"
            )
        job = self.add_task(fn, params, depends_on=[over], pass_parent_results=False,
                            **({} if name is None else {"name": name}), **job_options)
        job.map_param = item_param
        job.map_limit = max_active
        return job

    # -- checking ---------------------------------------------------------------------------
    @property
    def graph(self) -> nx.DiGraph:
        """A node per job id (name, function, params, job, ``map``: True for a map), an
        edge parent -> child."""
        import networkx as nx  # imported on first use: workers and the CLI start faster

        graph = nx.DiGraph(name=self.name)
        graph.add_nodes_from(
            (job.id, {"name": job.name, "function": f"{job.function_module}.{job.function_name}",
                      "params": job.params, "job": job, "map": job.map_param is not None})
            for job in self.jobs
        )
        graph.add_edges_from(self._edges())
        return graph

    def _edges(self) -> Iterator[tuple[str, str]]:
        """(parent id, child id) for every dependency inside the workflow."""
        return ((dep, job.id) for job in self.jobs for dep in job.dependencies
                if dep in self.job_map)

    def validate(self, queue: JobQueue | None = None) -> None:
        """Raise a WorkflowError subclass naming the problem; with a queue, also check
        that dependencies outside the workflow are jobs of that queue."""
        seen: set[str] = set()
        ordered = True  # every parent inside the workflow was added before its child
        for job in self.jobs:
            if job.id in seen:
                raise DuplicateJobError(
                    f"job {job.name!r} ({job.id}) appears twice in workflow {self.name!r}; "
                    "add each Job once"
                )
            if job.id in job.dependencies:
                raise SelfDependencyError(
                    f"job {job.name!r} depends on itself; remove it from its own depends_on"
                )
            ordered = ordered and all(dep in seen or dep not in self.job_map
                                      for dep in job.dependencies)
            seen.add(job.id)
        # Jobs in an order where parents come first cannot form a cycle: the usual case
        # (add_task takes Jobs already added) needs no sort. Otherwise the standard
        # library's sort: networkx (``graph``, the pictures) costs a fifth of a second to
        # import, more than checking thousands of steps.
        if not ordered:
            sorter = graphlib.TopologicalSorter(
                {job.id: [dep for dep in job.dependencies if dep in self.job_map]
                 for job in self.jobs})
            try:
                sorter.prepare()
            except graphlib.CycleError as exc:  # each step of the cycle is a parent of the next
                raise CycleError(
                    [self.job_map[job_id].name for job_id in exc.args[1][:-1]]) from None
        if queue is not None:
            self._check_outside_dependencies(queue)

    def _check_outside_dependencies(self, queue: JobQueue) -> None:
        outside = {dep: job for job in self.jobs for dep in job.dependencies
                   if dep not in self.job_map}
        missing = set(outside) - queue.existing_ids(outside)
        if missing:
            dep = sorted(missing)[0]
            raise UnknownDependencyError(
                f"job {outside[dep].name!r} depends on {dep!r}, which is neither a job of "
                f"workflow {self.name!r} nor a job in {queue.db_path}; add that job to the "
                "workflow or submit it first"
            )

    # -- submitting and running -------------------------------------------------------------
    def submit_all(self, queue: JobQueue) -> list[str]:
        """Validate, then submit every job in one transaction; ids in the order added."""
        self.submit(queue)
        return [job.id for job in self.jobs]

    def submit(self, queue: JobQueue | None = None, *, cache: bool | str = False
               ) -> WorkflowRun:
        """Validate and submit atomically; returns the run handle (also ``last_run``).

        ``cache=True`` reuses the results of earlier runs whose step, code, params and
        parents' results match (see docs/caching.md); ``"recompute"`` runs every step
        and refreshes what is stored; False (the default) neither reads nor writes them.
        """
        queue = queue or default_queue()
        with collector_paused():
            self.validate(queue)
            self.last_run = WorkflowRun(
                queue, queue.submit_workflow(self.name, self.jobs, cache=cache),
                jobs=None if any(job.map_param is not None for job in self.jobs)
                else tuple(self.jobs))
        return self.last_run

    def run(
        self,
        queue: JobQueue | None = None,
        workers: int = DEFAULT_RUN_WORKERS,
        wait: bool = True,
        progress: bool = True,
        timeout: float | None = None,
        *,
        cache: bool | str = False,
        executor: str = "threads",
    ) -> WorkflowRun:
        """Submit and run on ``workers`` background threads of this process (they accept
        pickle when the workflow's own jobs use it: this process wrote them). ``cache``
        as in :meth:`submit`.

        ``executor="processes"`` runs each step in one of ``workers`` child processes
        instead: CPU-bound Python runs in parallel, timeouts and cancels stop the work,
        a crash fails one attempt. Steps defined in this notebook or script go to them
        by value (docs/workers.md).

        With ``wait=True`` it returns when every job is terminal (or ``timeout``
        passes) and stops the threads; with ``wait=False`` it returns at once and the
        threads stop by themselves when the run is done.
        """
        queue = queue or default_queue()
        worker = Worker(
            queue, worker_id=f"run-{uuid.uuid4().hex[:8]}", polling_interval=1,
            concurrency=workers,
            allow_pickle=any(job.serializer == "pickle" for job in self.jobs),
            executor=executor,
        )
        worker.start_background()  # processes start while the workflow is checked and sent
        try:
            run = self.submit(queue, cache=cache)
        except BaseException:
            worker.stop(wait=True)
            raise
        if wait:
            try:
                run.wait(timeout=timeout, progress=progress)
            finally:
                worker.stop(wait=True)
        else:
            threading.Thread(target=_stop_when_done, args=(run, worker), daemon=True).start()
        return run

    # -- pictures (gigq_flow.viz, imported on first use) -----------------------------------
    def visualize(self, **options: Any) -> Picture:
        """The DAG: structure only before submission, coloured by live status after.
        Same options as :meth:`WorkflowRun.visualize`."""
        from .viz.draw import visualize

        if self.last_run is not None:
            return self.last_run.visualize(**options)
        return visualize(self.graph, None, **options)

    def widget(self, **options: Any) -> RunPanel:
        """The live panel of the last submitted run (see :meth:`WorkflowRun.widget`)."""
        if self.last_run is None:
            raise ConfigurationError(
                f"workflow {self.name!r} has not been submitted; call submit() or "
                "run(wait=False) first, then widget()"
            )
        return self.last_run.widget(**options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """SVG of the DAG plus a text summary; never raises into a notebook display."""
        from .viz.draw import display_bundle

        if self.last_run is not None:
            return display_bundle(None, self.last_run.snapshot, repr(self))
        return display_bundle(self.graph, None, repr(self))

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r}: {len(self.jobs)} jobs>"

    @staticmethod
    def load(queue: JobQueue, workflow_id: str) -> WorkflowRun:
        """The run handle of a submitted workflow, from any process."""
        return queue.get_workflow(workflow_id)


def _dependency_id(dep: Job | str) -> str:
    if isinstance(dep, Job):
        return dep.id
    if isinstance(dep, str):
        return dep
    raise ConfigurationError(
        f"depends_on takes Jobs and job ids, got {type(dep).__name__}"
    )


def _stop_when_done(run: WorkflowRun, worker: Worker) -> None:
    run.wait()
    worker.stop(wait=True)
