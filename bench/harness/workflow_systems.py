"""The systems with workflows, gigq_flow and gigq 0.5.1, behind one small interface for
the workflow scenarios (``bench/harness/workflow_scenarios.py``).

Each keeps its queue in one SQLite file inside a directory it is given and uses its own
public API: gigq_flow builds with ``Workflow.add_task`` (plain functions) and submits
with ``Workflow.submit``; gigq builds with ``Workflow.add_job`` of ``Job``s (its
``add_task`` takes only ``@task`` functions) and submits with ``submit_all``. Both drain
with ``Worker.process_one`` and run background workers with their default polling
interval (5 s in both).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import gigq

import gigq_flow

from .systems import QueueAndWorker

WorkerHandle = Any
"""What ``start_worker`` returns and ``stop_worker`` takes."""


class WorkflowSystem(Protocol):
    name: str
    wide_sizes: tuple[int, ...]
    """The ``n`` of the wide-DAG scenario this system is measured at."""
    latency_trials: int
    """Trials of the cross-process latency scenario (each costs about one idle poll cycle)."""
    idle_cycle: float
    """Seconds of an idle worker's poll cycle: the parent completes at a random moment
    within one, so that the latency samples every phase of it."""
    path: str

    def __init__(self, directory: str) -> None: ...

    def new_workflow(self, name: str) -> Any: ...

    def add(self, workflow: Any, name: str, function: Callable[..., Any],
            params: dict[str, Any] | None = None, parents: Sequence[Any] = ()) -> Any:
        """Add a job calling ``function(**params)`` after ``parents``; returns the Job."""

    def submit(self, workflow: Any) -> None: ...

    def process_one(self) -> bool:
        """Claim, run and complete one ready job in this thread; False when none was ready."""

    def unfinished(self) -> int:
        """How many jobs are not completed yet."""

    def times(self, job_id: str) -> tuple[datetime | None, datetime | None]:
        """The job's recorded ``started_at`` and ``completed_at``."""

    def close(self) -> None:
        """Release what this system opened in the calling thread (call it in every
        thread that used it)."""

    @staticmethod
    def start_worker(path: str, concurrency: int = 1) -> WorkerHandle:
        """A worker running in background threads of this process, default settings."""

    @staticmethod
    def stop_worker(handle: WorkerHandle) -> threading.Thread | None:
        """Stop it; returns a thread still winding down (join it before deleting the
        directory), or None."""


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class QueueWorkerWorkflows(QueueAndWorker):
    """What both workflow systems share beyond a queue and a worker: jobs' start and end."""

    def times(self, job_id: str) -> tuple[datetime | None, datetime | None]:
        status = self.queue.get_status(job_id)
        return parse_time(status["started_at"]), parse_time(status["completed_at"])


class GigqFlowWorkflows(QueueWorkerWorkflows):
    name = "gigq_flow"
    api = gigq_flow
    wide_sizes = (500, 4000, 8000)
    latency_trials = 20
    idle_cycle = 0.25  # many times the 20 ms between its checks for other processes' commits

    def new_workflow(self, name: str) -> gigq_flow.Workflow:
        return gigq_flow.Workflow(name)

    def add(self, workflow: gigq_flow.Workflow, name: str, function: Callable[..., Any],
            params: dict[str, Any] | None = None, parents: Sequence[Any] = ()) -> gigq_flow.Job:
        return workflow.add_task(function, params=params, depends_on=list(parents) or None,
                                 name=name)

    def submit(self, workflow: gigq_flow.Workflow) -> None:
        workflow.submit(self.queue)

    @staticmethod
    def start_worker(path: str, concurrency: int = 1) -> gigq_flow.Worker:
        worker = gigq_flow.Worker(path, concurrency=concurrency)
        worker.start_background()
        return worker

    @staticmethod
    def stop_worker(handle: gigq_flow.Worker) -> None:
        handle.stop(wait=True)


class GigqWorkflows(QueueWorkerWorkflows):
    name = "gigq"
    api = gigq
    # n=8,000 is left out: its claims re-read every waiting child, and the drain took
    # 67 s (248 jobs/s) on the 2-CPU development machine, a minute of the run's budget.
    wide_sizes = (500, 4000)
    latency_trials = 6  # each waits out up to one 5 s polling interval, twice
    idle_cycle = 5.0  # its polling_interval: a worker with nothing ready sleeps that long

    def new_workflow(self, name: str) -> gigq.Workflow:
        return gigq.Workflow(name)

    def add(self, workflow: gigq.Workflow, name: str, function: Callable[..., Any],
            params: dict[str, Any] | None = None, parents: Sequence[Any] = ()) -> gigq.Job:
        return workflow.add_job(gigq.Job(name, function, params=params),
                                depends_on=list(parents) or None)

    def submit(self, workflow: gigq.Workflow) -> None:
        workflow.submit_all(self.queue)

    @staticmethod
    def start_worker(path: str, concurrency: int = 1) -> tuple[gigq.Worker, threading.Thread]:
        # gigq has no background mode: its blocking start() runs in a thread of ours.
        worker = gigq.Worker(path, concurrency=concurrency)
        thread = threading.Thread(target=worker.start, name="gigq-worker", daemon=True)
        thread.start()
        return worker, thread

    @staticmethod
    def stop_worker(handle: tuple[gigq.Worker, threading.Thread]) -> threading.Thread:
        worker, thread = handle
        worker.stop()  # its threads notice after their current sleep (up to 5 s)
        return thread


WORKFLOW_SYSTEMS: dict[str, type[WorkflowSystem]] = {
    system.name: system for system in (GigqFlowWorkflows, GigqWorkflows)
}
"""Every system with workflows by name, gigq_flow first."""
