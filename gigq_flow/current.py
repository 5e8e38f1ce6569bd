"""What a running step can ask about itself: ``current_job()`` and ``check_cancelled()``.

The worker marks the thread that runs a step with its attempt (:class:`Running`); its
heartbeat marks the attempt ended when it is cancelled or passes its timeout. A thread
cannot be stopped from outside, so a long step calls ``check_cancelled()`` now and then:
it raises :class:`~gigq_flow.errors.JobCancelled` once its attempt has ended (whatever
the step returns after that is discarded anyway).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

from .errors import JobCancelled

_local = threading.local()


class CurrentJob(NamedTuple):
    """The step this thread is running: its job id, task name and attempt number."""

    id: str
    name: str
    attempt: int


class Attempt:
    """An attempt as its thread and its worker's heartbeat share it."""

    __slots__ = ("job", "ended", "stop")

    def __init__(self, job: CurrentJob) -> None:
        self.job = job
        self.ended: str | None = None
        """How the attempt ended while its step ran (``cancelled``, ``timeout``, or
        ``interrupted``: its worker stopped and returned the job), if it did."""
        self.stop: Callable[[], None] | None = None
        """Stops the step's work for real, where it can be (a step on a process)."""


class Running:
    """``with Running(attempt):`` marks this thread as running ``attempt``."""

    __slots__ = ("attempt",)

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    def __enter__(self) -> Attempt:
        _local.attempt = self.attempt
        return self.attempt

    def __exit__(self, *exc: object) -> None:
        _local.attempt = None


def current_job() -> CurrentJob | None:
    """The step this thread runs (id, name, attempt number), or None outside a step."""
    attempt = getattr(_local, "attempt", None)
    return None if attempt is None else attempt.job


def check_cancelled() -> None:
    """Raise JobCancelled if the attempt this thread runs was cancelled or timed out; a
    no-op outside a step. Call it between pieces of a long step's work."""
    attempt = getattr(_local, "attempt", None)
    if attempt is not None and attempt.ended is not None:
        raise JobCancelled(
            f"attempt {attempt.job.attempt} of job {attempt.job.name!r} ({attempt.job.id}) "
            f"ended {attempt.ended} while it ran; stop its work"
        )
