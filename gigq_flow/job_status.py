"""``JobStatus``: where a job is in its life (GigQ's module path ``gigq_flow.job_status``)."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """Where a job is in its life. Terminal states stay put unless requeued."""

    PENDING = "pending"
    """Waiting for a worker, for its parents, or for its retry delay."""
    RUNNING = "running"
    """Claimed by a worker; an execution row records the attempt."""
    COMPLETED = "completed"
    """Finished and its result stored."""
    FAILED = "failed"
    """Raised on its last attempt."""
    CANCELLED = "cancelled"
    """Cancelled while pending."""
    TIMEOUT = "timeout"
    """Ran past its timeout on its last attempt."""
    UPSTREAM_FAILED = "upstream_failed"
    """Will never run: a job it depends on ended failed, timed out or cancelled."""

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self not in (JobStatus.PENDING, JobStatus.RUNNING)


FINAL_FAILURES = (JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.CANCELLED)
"""The ends of a job that its descendants propagate as upstream_failed."""
