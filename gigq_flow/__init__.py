"""gigq_flow: workflow DAGs on an embedded SQLite job queue, with GigQ 0.5's API."""

import logging

from .db_utils import close_connections
from .decorators import task
from .errors import (
    CycleError,
    DatabaseError,
    GigqFlowError,
    JobNotFoundError,
    UnknownDependencyError,
    WorkflowError,
)
from .job import Job
from .job_queue import JobQueue
from .job_status import JobStatus
from .logs import setup_logging
from .results import ParentResults
from .run import WorkflowRun
from .snapshot import JobState, RunSnapshot
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
