"""gigq_flow: workflow DAGs on an embedded SQLite job queue, with GigQ 0.5's API."""

import logging

from .errors import (
    CycleError,
    DatabaseError,
    GigqFlowError,
    JobNotFoundError,
    UnknownDependencyError,
    WorkflowError,
)
from .job import Job, JobStatus
from .logs import setup_logging
from .queue import JobQueue
from .results import ParentResults
from .run import JobState, RunSnapshot, WorkflowRun
from .store.sqlite_connection import close_thread_connections as close_connections
from .tasks import task
from .worker import Worker
from .workflow import Workflow

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CycleError",
    "DatabaseError",
    "GigqFlowError",
    "Job",
    "JobNotFoundError",
    "JobQueue",
    "JobState",
    "JobStatus",
    "ParentResults",
    "RunSnapshot",
    "UnknownDependencyError",
    "Worker",
    "Workflow",
    "WorkflowError",
    "WorkflowRun",
    "close_connections",
    "setup_logging",
    "task",
]
