"""gigq_flow: workflow DAGs on an embedded SQLite job queue, with GigQ 0.5's API."""

import logging

from .current import check_cancelled, current_job
from .db_utils import close_connections
from .decorators import task
from .errors import (
    CycleError,
    DatabaseError,
    GigqFlowError,
    JobCancelled,
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
    "JobCancelled",
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
    "check_cancelled",
    "close_connections",
    "current_job",
    "setup_logging",
    "task",
]
