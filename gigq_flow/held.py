"""What a worker holds: the jobs it claimed, each with the deadline of its timeout, and
the steps running now (their output and their attempt), shared by its threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .current import Attempt
    from .output import Output
    from .store import ClaimedJob

Running = tuple["ClaimedJob", "Output", "Attempt"]


class HeldJobs:
    """A worker's claims by attempt id, and its running steps; every method is atomic."""

    def __init__(self) -> None:
        self._claims: dict[str, tuple[ClaimedJob, float]] = {}  # with a monotonic deadline
        self._running: dict[str, Running] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._claims)

    def hold(self, claim: ClaimedJob) -> float:
        """Hold ``claim`` until its timeout from now, which is returned."""
        deadline = time.monotonic() + claim.timeout
        with self._lock:
            self._claims[claim.execution_id] = (claim, deadline)
        return deadline

    def drop(self, claims: Iterable[ClaimedJob]) -> None:
        """Hold these claims no more (their outcomes are recorded, or they went back)."""
        with self._lock:
            for claim in claims:
                self._claims.pop(claim.execution_id, None)

    def start(self, claim: ClaimedJob, output: Output, attempt: Attempt) -> None:
        with self._lock:
            self._running[claim.execution_id] = (claim, output, attempt)

    def stop(self, claim: ClaimedJob) -> None:
        with self._lock:
            self._running.pop(claim.execution_id, None)

    def running(self) -> list[Running]:
        with self._lock:
            return list(self._running.values())

    def overdue(self, now: float) -> list[ClaimedJob]:
        with self._lock:
            return [claim for claim, deadline in self._claims.values() if deadline <= now]

    def deadlines(self) -> list[float]:
        with self._lock:
            return [deadline for _, deadline in self._claims.values()]

    def end(self, execution_id: str, how: str) -> None:
        """The attempt is over (``how``): no deadline to watch, its step is told."""
        with self._lock:
            self._claims.pop(execution_id, None)
            running = self._running.get(execution_id)
        if running is not None:
            attempt = running[2]
            attempt.ended = how
            if attempt.stop is not None:
                attempt.stop()

    def take_all(self) -> tuple[list[ClaimedJob], list[Attempt]]:
        """Let go of every claim: the claims, and the attempts whose steps can be stopped."""
        with self._lock:
            claims = [claim for claim, _ in self._claims.values()]
            self._claims.clear()
            stoppable = [attempt for _, _, attempt in self._running.values() if attempt.stop]
        return claims, stoppable
