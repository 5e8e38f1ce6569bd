"""A worker thread's batch: jobs claimed together, completions written together.

A thread whose steps are quick claims several ready jobs in one transaction and writes
their completions in the transaction of its next claims, so a step of no work costs a
fraction of a transaction. The batch doubles while its steps run under QUICK_STEP
seconds on average, up to MAX_BATCH, and is back to one job as soon as they do not.
Steps that quick gain nothing from running on several threads, whose transactions
would only queue for the one writer: while one of the worker's threads runs them in
batches (the first to batch, until it goes idle or its steps slow down), its other
threads finish what they hold and claim only when woken by a batch that left ready jobs
behind. A thread whose steps are untimed (it has just started, or was idle) claims on
trial: until its first step has run TRIAL seconds, or ended, the worker's other untimed
threads leave the claims to it, so that a burst of quick steps starts on one thread
rather than one step on each. While the worker has nothing to do, one of its idle
threads watches the file for other processes' work; the others wait for a wake-up from
this process (the watcher's trial, when it finds work).
Claimed jobs wait in the batch as running jobs of the worker (its heartbeat renews their
lease); each one's timeout counts from its own start. A step that runs on for longer
than HOLD_LIMIT makes the batch give up what it holds (``give_up``): the completions are
written and the waiting jobs go back to the queue, so that a slow step keeps neither its
batch's children nor its waiting jobs from other threads.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import ClaimedJob

QUICK_STEP = 0.0005
"""Seconds: a batch whose steps ran less than this on average doubles (a step that
short costs less than the transactions of its claim and completion)."""
MAX_BATCH = 64
"""The most jobs a thread claims in one transaction."""
TRIAL = 0.001
"""Seconds after the step of a trial claim starts that the worker's other untimed threads
wait for it to end (slow steps' threads start this much apart)."""
HOLD_LIMIT = 1.0
"""Seconds a step may run before its batch gives up what it holds."""

Done = tuple["ClaimedJob", "str | bytes | None"]


class ClaimBatch:
    """The claims one worker thread holds and the completions it has not written yet."""

    def __init__(self) -> None:
        self.size = 1
        self.waiting: deque[ClaimedJob] = deque()
        self.done: list[Done] = []
        self.step_time = 0.0  # seconds its steps ran since the last write
        self.step_started: float | None = None  # a step of the batch runs since then
        self.idle = False  # its thread waits for work
        self.timed = False  # a step of its thread was timed since it was last idle
        self.trial: float | None = None  # its trial's first step started (inf: not yet)
        self.watching = False  # its thread waits for other processes' work, for the worker
        self._lock = threading.Lock()  # the heartbeat may give the batch up

    @property
    def batching(self) -> bool:
        """Whether its thread runs quick steps in batches and has not gone idle."""
        return self.size > 1 and not self.idle

    def rest(self) -> None:
        """Its thread waits for work: no thread defers to it, and its steps are untimed."""
        self.idle, self.timed, self.trial, self.watching = True, False, None, False

    def trial_left(self, now: float) -> float:
        """Seconds the other untimed threads still leave the claims to this one (inf:
        until its first step starts)."""
        return 0.0 if self.trial is None else max(0.0, self.trial + TRIAL - now)

    def found(self, claimed: bool) -> None:
        """Its thread's claim returned: a trial that claimed nothing ends."""
        if not claimed:
            self.trial = None

    def begin_step(self) -> bool:
        """A step starts; True when it is a trial's first (the threads that wait for the
        trial look again)."""
        self.step_started = time.monotonic()
        if self.trial != math.inf:
            return False
        self.trial = self.step_started
        return True

    def end_step(self) -> None:
        if self.step_started is not None:
            self.step_time += time.monotonic() - self.step_started
        self.step_started = None

    def next(self) -> ClaimedJob | None:
        """The next claimed job to run, or None."""
        with self._lock:
            return self.waiting.popleft() if self.waiting else None

    def holds(self, claim: ClaimedJob) -> bool:
        """Whether the completion of ``claim`` waits to be written."""
        with self._lock:  # a held completion is the last one kept
            return bool(self.done) and self.done[-1][0] is claim

    def finished(self, claim: ClaimedJob, result: str | bytes | None) -> bool:
        """Keep a completion; True when it is time to write the batch (no job waits)."""
        with self._lock:
            self.done.append((claim, result))
            return not self.waiting

    def take(self, claiming: bool) -> tuple[list[Done], int]:
        """The completions to write and how many jobs to claim with them: the next
        batch's size, from how quick the steps were (none when not ``claiming``)."""
        with self._lock:
            done, self.done = self.done, []
        quick = bool(done) and self.step_time / len(done) < QUICK_STEP
        self.size = min(self.size * 2, MAX_BATCH) if quick else 1
        self.step_time, self.timed, self.trial = 0.0, True, None
        return done, self.size if claiming else 0

    def add(self, claims: list[ClaimedJob]) -> None:
        with self._lock:
            self.waiting.extend(claims)

    def give_up(self, now: float | None = None) -> tuple[list[Done], list[ClaimedJob]]:
        """The completions to write now and the waiting jobs to return, when a step has
        run past HOLD_LIMIT at ``now`` (always without ``now``); the batch starts over
        at one."""
        with self._lock:
            if now is not None and (self.step_started is None
                                    or now - self.step_started < HOLD_LIMIT):
                return [], []
            done, self.done = self.done, []
            waiting, self.waiting = list(self.waiting), deque()
            self.size = 1
        return done, waiting


class ClaimBatches:
    """The batches of a worker's loop threads, and which of them claims for the others."""

    def __init__(self) -> None:
        self._batches: list[ClaimBatch] = []
        self._leader: ClaimBatch | None = None  # the one that claims quick steps
        self._lock = threading.Lock()  # the list, and who is on trial

    def new(self) -> ClaimBatch:
        """A loop thread's batch."""
        batch = ClaimBatch()
        with self._lock:
            self._batches.append(batch)
        return batch

    def all(self) -> list[ClaimBatch]:
        with self._lock:
            return list(self._batches)

    def clear(self) -> None:
        """Forget the batches (a restarted worker's threads bring their own)."""
        with self._lock:
            self._batches.clear()

    def leads(self, batch: ClaimBatch) -> bool:
        """Whether ``batch``'s thread claims quick steps for the others, which defer to it."""
        return self._leader is batch and batch.batching

    def deferral(self, batch: ClaimBatch, now: float, *, trial: bool = False,
                 idle: bool = False) -> float:
        """Seconds ``batch``'s thread leaves the claims to another (0: it claims now;
        inf: until woken): to the one that runs quick steps in batches (the first thread
        to batch leads until it stops: idle, or its steps slowed down), or, its own steps
        untimed, to another's trial, or, ``idle``, to the thread that watches the file.
        With ``trial``, a thread that claims now with untimed steps goes on trial."""
        leader = self._leader
        if leader is None or not leader.batching:
            leader = self._leader = next((other for other in self._batches if other.batching),
                                         None)
        if leader is not None:
            return 0.0 if leader is batch else math.inf
        if batch.timed:
            return 0.0
        with self._lock:
            left = max([other.trial_left(now) for other in self._batches if other is not batch],
                       default=0.0)
            if trial and not left and batch.trial is None:
                batch.trial = math.inf
        if not left and idle and any(other.watching for other in self._batches
                                     if other is not batch):
            return math.inf
        return left
