"""``Worker``: claims ready jobs, imports and calls their functions, records outcomes."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any

from .checks import check_int, check_number
from .claim_batch import ClaimBatch, ClaimBatches, Done
from .current import Attempt, CurrentJob
from .errors import ConfigurationError, DatabaseError
from .fingerprint import result_digest
from .held import HeldJobs
from .job_queue import JobQueue
from .loader import FunctionLoader
from .mapping import run_map
from .output import DEFAULT_OUTPUT_LIMIT, Output, describe_error
from .output import install as install_output_routing
from .serialization import loads
from .step_cache import CACHED_MODES, StepCache
from .step_process import Call, ThreadSteps, call_step
from .store import REUSED, ClaimedJob, Store, new_instance, open_store

logger = logging.getLogger(__name__)

DEFAULT_POLLING_INTERVAL = 5.0
DEFAULT_LEASE_TIMEOUT = 30.0
DEFAULT_GRACE_PERIOD = 30.0
DATABASE_ERROR_BACKOFF = 1.0
SUPERVISE_INTERVAL = 0.1
LOST_WORKER_CHECK_INTERVAL = 0.05
OUTPUT_STORE_INTERVAL = 1.0
"""Seconds between two stores of a running step's output (``gigq-flow logs --follow``)."""
EXECUTORS = ("threads", "processes")
"""Where a worker calls steps: on its threads, or each thread's child process."""


class Worker:
    """Runs jobs from a queue until stopped.

    ``start()`` blocks; on the main thread the first SIGINT/SIGTERM stops claiming,
    lets running jobs finish within ``grace_period`` seconds and returns the rest to
    the queue, and a second one exits the process at once. ``start_background()``
    returns at once; ``with Worker(...)`` runs in the background inside the block.
    With ``concurrency > 1`` that many threads claim and run jobs, with ids
    ``f"{worker_id}-{i}"``. An idle thread wakes as soon as work appears;
    ``polling_interval`` is only its longest sleep.

    A heartbeat thread renews the worker's lease every third of ``lease_timeout`` and
    ends its own jobs that run past their ``timeout``: if this process dies, other
    workers reclaim its jobs once the lease expires. ``allowed_modules`` limits which
    functions may run (a module and its submodules); pickled payloads, and steps another
    process shipped by value, run only with ``allow_pickle=True``.

    ``executor="processes"`` calls each step in a child process of its thread (reused
    between jobs, replaced when it dies): a timeout or a cancel then ends the step's work
    for real, and a crash fails only its attempt (see :mod:`.step_process`).

    ``db_path`` is the queue's file or URL (GigQ's form), or a ``JobQueue``, whose
    connections the worker then shares.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | JobQueue,
        worker_id: str | None = None,
        polling_interval: float = DEFAULT_POLLING_INTERVAL,
        concurrency: int = 1,
        *,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        allowed_modules: Iterable[str] | None = None,
        allow_pickle: bool = False,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        executor: str = "threads",
    ) -> None:
        if executor not in EXECUTORS:
            raise ConfigurationError(
                f"executor must be 'threads' or 'processes', got {executor!r}: threads share "
                "this process, processes run each step in a child process"
            )
        self.executor = executor
        self.concurrency = check_int("concurrency", concurrency, minimum=1)
        self.polling_interval = check_number("polling_interval", polling_interval,
                                             inclusive=False, kind="a number of seconds")
        self.lease_timeout = check_number("lease_timeout", lease_timeout, inclusive=False,
                                          kind="a number of seconds")
        self.grace_period = check_number("grace_period", grace_period,
                                         kind="a number of seconds")
        self.output_limit = check_int("output_limit", output_limit, minimum=0)
        if isinstance(allowed_modules, str):
            raise ConfigurationError("allowed_modules takes a list of module names, got the "
                                     f"string {allowed_modules!r}")
        self.store: Store
        if isinstance(db_path, JobQueue):
            self.db_path, self.store = db_path.db_path, db_path.store
        else:
            self.db_path, self.store = os.fspath(db_path), open_store(db_path)
        self.instance = new_instance()  # this worker's lease, and the prefix of its attempts
        self.worker_id = worker_id or f"worker-{self.instance}"
        self._loader = FunctionLoader(self.store, allowed_modules, allow_pickle)
        self.allowed_modules, self.allow_pickle = self._loader.allowed_modules, allow_pickle
        self.running = False
        self._attempt_numbers = itertools.count(1)
        self._held = HeldJobs()
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_stopping, self._heartbeat_next_wake = False, 0.0
        self._heartbeat_wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._signals_received, self._next_lost_check = 0, 0.0
        self._cache = StepCache(self.store, self._loader.loaded, self._next_attempt)
        self._thread_state = threading.local()  # a thread's ClaimBatch
        self._steps = ThreadSteps()  # each thread's child process, with executor="processes"
        self._batches = ClaimBatches()  # the loop threads'

    # -- one job ----------------------------------------------------------------------------
    def process_one(self) -> bool:
        """Reclaim the jobs of lost workers (at most every LOST_WORKER_CHECK_INTERVAL
        seconds), then claim and run one ready job; False if none was ready."""
        return self._process_one(self.worker_id)

    def _process_one(self, worker_id: str) -> bool:
        """``process_one``, claiming under ``worker_id`` (a loop thread's own id), unless
        the thread's batch holds a claimed job."""
        self._ensure_heartbeat()
        batch: ClaimBatch | None = getattr(self._thread_state, "batch", None)
        claim = None
        if batch is not None:
            if batch.done and not batch.waiting:  # its last step did not complete
                self._write_batch(batch, worker_id)
            claim = batch.next()
        if claim is None:
            now = time.monotonic()
            if batch is not None and self._batches.deferral(batch, now, trial=True):
                return False
            if now >= self._next_lost_check:  # a cheap read, but not on every job
                self._next_lost_check = now + LOST_WORKER_CHECK_INTERVAL
                self.store.reclaim_lost()
            self._cache.begin_claim()
            try:
                claim = self.store.claim(worker_id, self._next_attempt(), self._cache)
            finally:
                if batch is not None:
                    batch.found(claim is not None)
            if claim is None:
                return False
            if not self._accept(claim):
                return True
        else:
            self._set_deadline(claim)  # its timeout counts from its start
        logger.info("%s: running job %s (%s)", worker_id, claim.id, claim.name)
        self._run(claim, batch)  # if it raises (a database error), the attempt stays
        if batch is None or not batch.holds(claim):  # held: the heartbeat ends it at its
            self._held.drop([claim])  # deadline, rather than never
        return True

    def _accept(self, claim: ClaimedJob) -> bool:
        """True for a step to run now, registered with its deadline; a claim the cache
        completed, or a map's expansion or collection, is done here."""
        if claim.cache == REUSED:
            logger.info("job %s (%s) reused an earlier result", claim.id, claim.name)
            return False
        if claim.map_param is not None:  # expanded or collected: no function to call
            run_map(self.store, self._loader, claim)
            return False
        self._set_deadline(claim)
        return True

    def _set_deadline(self, claim: ClaimedJob) -> None:
        if self._held.hold(claim) < self._heartbeat_next_wake:
            self._heartbeat_wake.set()  # the heartbeat enforces the timeout

    def _next_attempt(self) -> str:
        """A new attempt id: this worker's instance, then its own counter."""
        return f"{self.instance}-{next(self._attempt_numbers)}"

    def _run(self, claim: ClaimedJob, batch: ClaimBatch | None = None) -> None:
        plan = step = code = None
        try:
            func = self._loader.load(claim)
            params = loads(claim.params, claim.serializer, what="params")  # recorded on the job
            parents = self._loader.parents_of(claim, func)
            if claim.cache in CACHED_MODES:
                plan = self._cache.plan(claim, func, params, parents)
                if plan is None:  # completed with an earlier run's result
                    return
            if parents is not None:
                params["parent_results"] = self._loader.parent_results(parents)
            if self.executor == "processes":
                step = self._steps.mine()
                code = self._loader.code_ref(claim, func, step.start())
        except Exception as exc:  # deterministic: retrying cannot help
            self._finish_failed(claim, f"cannot start job: {describe_error(exc)}", retry=False)
            return
        # On a process the child keeps to the limit: the worker stores what it sends.
        output = Output(self.output_limit if step is None else sys.maxsize)
        attempt = Attempt(CurrentJob(claim.id, claim.name, claim.attempts))
        if step is not None:
            attempt.stop = step.stop
        self._held.start(claim, output, attempt)
        if time.monotonic() + OUTPUT_STORE_INTERVAL < self._heartbeat_next_wake:
            self._heartbeat_wake.set()  # it stores the output and sees cancels every second
        if batch is not None and batch.begin_step() and self.concurrency > 1:
            self.store.wake_all()  # the threads that wait for its trial look again
        try:
            if step is None or code is None:
                outcome = call_step(func, params, claim.serializer, output, attempt)
            else:
                outcome = step.run(Call(attempt.job, code, params, claim.serializer,
                                        self.output_limit), output)
        finally:
            if batch is not None:
                batch.end_step()
            self._held.stop(claim)
            self._store_output(claim, output)
        if attempt.ended == "cancelled" or (attempt.ended and step is not None):
            # Its row holds the attempt, ended (a stopped process's exit says nothing more).
            logger.info("job %s: attempt %s ended %s while it ran; its outcome is discarded",
                        claim.id, claim.execution_id, attempt.ended)
            return
        if outcome.error is not None:
            logger.info("job %s failed on attempt %d: %s", claim.id, claim.attempts,
                        outcome.error)
            self._finish_failed(claim, outcome.error,
                                retry=outcome.retry and claim.attempts < claim.max_attempts,
                                traceback=outcome.traceback)
            return
        if plan is None and batch is not None:
            if batch.finished(claim, outcome.result):
                self._write_batch(batch, claim.worker_id)
            return
        if plan is None:
            completed = self.store.complete(claim, outcome.result)
        else:
            completed = self.store.complete_cached(
                claim, outcome.result, result_digest(outcome.result, claim.serializer),
                plan.key, plan.note, refresh=plan.refresh)
        if not completed:
            logger.warning("job %s: result discarded, the job was reclaimed", claim.id)

    def _write_batch(self, batch: ClaimBatch, worker_id: str) -> None:
        """Write a loop thread's completions and claim its next batch, in one transaction."""
        done, size = batch.take(claiming=self.running and not self._batches.deferral(
            batch, time.monotonic()))
        self._cache.begin_claim()
        completed, claimed = self.store.complete_and_claim(
            done, worker_id, [self._next_attempt() for _ in range(size)], self._cache,
            leading=self._batches.leads(batch))
        self._written(done, completed)
        batch.add([claim for claim in claimed if self._accept(claim)])

    def _written(self, done: list[Done], completed: list[bool]) -> None:
        self._held.drop(claim for claim, _ in done)
        for (claim, _), recorded in zip(done, completed, strict=True):
            if not recorded:
                logger.warning("job %s: result discarded, the job was reclaimed", claim.id)

    def _give_up_batches(self, now: float | None = None) -> None:
        """Write the completions and return the waiting jobs of the batches whose step
        runs past their HOLD_LIMIT at ``now`` (of every batch without ``now``)."""
        for batch in self._batches.all():
            done, waiting = batch.give_up(now)
            if done:
                self._written(done, self.store.complete_and_claim(done, "", [])[0])
            if waiting:
                self._held.drop(waiting)
                self.store.unclaim(waiting)

    def _finish_failed(self, claim: ClaimedJob, error: str, *, retry: bool,
                       traceback: str | None = None) -> None:
        if not self.store.fail(claim, error, retry=retry, traceback=traceback):
            logger.warning("job %s: failure discarded, the job was reclaimed", claim.id)

    def _store_output(self, claim: ClaimedJob, output: Output) -> None:
        """Store what the attempt wrote since the last time (its pieces in order); a
        database error is logged: the attempt's outcome matters more than its output."""
        with output.storing:
            text = output.take()
            if not text:
                return
            try:
                self.store.append_output(claim, text)
            except DatabaseError:
                logger.exception("job %s: could not store %d characters of its output",
                                 claim.id, len(text))

    # -- heartbeat --------------------------------------------------------------------------
    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is not None and not self._heartbeat_stopping:
            return  # it beats until _stop_heartbeat (cheaper to ask than Thread.is_alive)
        install_output_routing()
        self.store.register_worker(self.instance, self.worker_id, self.concurrency,
                                   self.lease_timeout)
        self._heartbeat_stopping = False
        self._heartbeat = threading.Thread(target=self._beat, daemon=True,
                                           name=f"{self.worker_id}-heartbeat")
        self._heartbeat.start()

    def _beat(self) -> None:
        """Renew the lease every third of ``lease_timeout`` and time out this worker's
        jobs at their deadlines; a failed beat is logged and retried."""
        renew_at = 0.0
        try:
            while not self._heartbeat_stopping:
                now = time.monotonic()
                retry_at = None
                try:
                    if now >= renew_at:
                        self.store.heartbeat(self.instance)
                        renew_at = now + self.lease_timeout / 3
                    self._time_out_overdue(now)
                    self._give_up_batches(now)
                    running = self._held.running()
                    if running:
                        self._notice_ended(running)
                    for claim, output, _ in running:
                        self._store_output(claim, output)
                except Exception:
                    logger.exception("worker %s: heartbeat failed; retrying", self.worker_id)
                    retry_at = now + DATABASE_ERROR_BACKOFF
                self._heartbeat_wake.clear()  # before reading deadlines: none is missed
                if self._heartbeat_stopping:  # the stop's wake-up may just have been cleared
                    break
                deadlines = self._held.deadlines()
                if deadlines:  # busy: output stored, cancels and batches seen every second
                    deadlines.append(time.monotonic() + OUTPUT_STORE_INTERVAL)
                self._heartbeat_next_wake = retry_at or min([renew_at, *deadlines])
                self._heartbeat_wake.wait(max(0.0, self._heartbeat_next_wake - time.monotonic()))
            if not self._held:  # else the lease lapses and other workers reclaim the jobs
                self.store.unregister_worker(self.instance)
        except Exception:
            logger.exception("worker %s: could not record its stop", self.worker_id)
        finally:
            self.store.close()

    def _time_out_overdue(self, now: float) -> None:
        for claim in self._held.overdue(now):  # its thread runs on; its writes are fenced off
            self.store.time_out(claim)
            self._held.end(claim.execution_id, "timeout")

    def _notice_ended(self, running: list[tuple[ClaimedJob, Output, Attempt]]) -> None:
        """Mark the attempts that ended without this worker (cancelled while they ran,
        or reclaimed): their steps' ``check_cancelled()`` raises from now on."""
        states = self.store.attempt_states(claim.id for claim, _, _ in running)
        for claim, _, attempt in running:
            held, status = states.get(claim.id, (None, "deleted"))
            if attempt.ended is None and (held != claim.execution_id or status != "running"):
                self._held.end(claim.execution_id,
                               status if held == claim.execution_id else "reclaimed")

    def _stop_heartbeat(self) -> None:
        self._heartbeat_stopping = True
        self._heartbeat_wake.set()
        if self._heartbeat is not None:
            self._heartbeat.join(5)

    # -- the loop -------------------------------------------------------------------------
    def _loop(self, index: int) -> None:
        worker_id = self.worker_id if self.concurrency == 1 else f"{self.worker_id}-{index}"
        logger.info("worker thread %s started", worker_id)
        batch = self._thread_state.batch = self._batches.new()
        try:
            if self.executor == "processes":
                self._steps.mine().start()  # its start-up overlaps the first claim's
            while True:
                try:
                    batch.idle = batch.watching = False
                    # Before the checks, so that no wake-up is missed; none if a job waits;
                    # a thread that defers to another waits for this process only.
                    deferring = not batch.waiting and bool(
                        self._batches.deferral(batch, time.monotonic(), idle=True))
                    since = None if batch.waiting else self.store.watch(this_process=deferring)
                    if since is not None and not self.running:
                        break
                    if self._process_one(worker_id):
                        continue
                    batch.rest()  # until woken: no thread defers to a waiting one
                    deferral = self._batches.deferral(batch, time.monotonic(), idle=True)
                    if deferral:  # the thread it defers to wakes it if it leaves work
                        self.store.wait_for_work(min(deferral, self.polling_interval), since,
                                                 this_process=True)
                    elif not deferring:  # else it claims after all: its token waits for
                        due = self.store.next_due()  # this process only
                        idle = self.polling_interval if due is None else due
                        batch.watching = True  # for the worker: its other idle threads rest
                        self.store.wait_for_work(min(self.polling_interval, idle), since)
                except DatabaseError:
                    logger.exception("worker thread %s: database error", worker_id)
                    self.store.wait_for_work(DATABASE_ERROR_BACKOFF)
        finally:
            batch.rest()  # no thread defers to a stopped one
            logger.info("worker thread %s stopped", worker_id)
            self.store.close()

    def _supervise(self) -> None:
        """Run the loop threads; once stopped, wait ``grace_period`` for running jobs,
        then return the unfinished ones to the queue."""
        self._ensure_heartbeat()
        threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"{self.worker_id}-{i}",
                             daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        stop_deadline = None
        alive = threads
        while alive:
            if not self.running:
                stop_deadline = stop_deadline or time.monotonic() + self.grace_period
                if time.monotonic() >= stop_deadline:
                    break
            alive[0].join(SUPERVISE_INTERVAL)
            alive = [thread for thread in alive if thread.is_alive()]
        self._give_up_batches()
        self._batches.clear()
        unfinished, stopping = self._held.take_all()
        for attempt in stopping:  # released below: their processes end now
            attempt.ended = "interrupted"  # its thread drops the killed step's exit
            attempt.stop()  # type: ignore[misc]
        self._steps.close_all()
        if unfinished:
            released = self.store.release(unfinished)
            logger.warning("worker %s: grace period over; %d unfinished job(s) returned to the "
                           "queue", self.worker_id, released)
        self._stop_heartbeat()
        self.store.close()

    def start(self) -> None:
        """Run until ``stop()`` or, on the main thread, a SIGINT/SIGTERM (see the class)."""
        self.running = True
        self._signals_received = 0
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        logger.info("worker %s started on %s", self.worker_id, self.db_path)
        try:
            self._supervise()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            logger.info("worker %s stopped", self.worker_id)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals_received += 1
        if self._signals_received > 1:
            logger.warning("worker %s: second signal, exiting now", self.worker_id)
            os._exit(128 + signum)
        logger.info("worker %s: signal %d, finishing running jobs (grace %.0f s)",
                    self.worker_id, signum, self.grace_period)
        self.stop()

    def start_background(self) -> threading.Thread:
        """Run the worker in daemon threads and return at once."""
        if self._supervisor is not None and self._supervisor.is_alive():
            raise ConfigurationError(f"worker {self.worker_id} is already running")
        self.running = True
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"gigq-flow-{self.worker_id}", daemon=True
        )
        self._supervisor.start()
        return self._supervisor

    def stop(self, wait: bool = False, timeout: float | None = None) -> None:
        """Claim nothing more; running jobs finish. ``wait`` joins background threads."""
        self.running = False
        self.store.wake_all()
        if wait and self._supervisor is not None:
            self._supervisor.join(timeout)

    def close(self) -> None:
        """Stop the heartbeat and the step processes; close this thread's connection."""
        self._steps.close_all()
        self._stop_heartbeat()
        self.store.close()

    def __enter__(self) -> Worker:
        self.start_background()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(wait=True)

    def __repr__(self) -> str:
        executor = "" if self.executor == "threads" else f", executor={self.executor!r}"
        return (f"Worker({self.db_path!r}, worker_id={self.worker_id!r}, "
                f"concurrency={self.concurrency}{executor})")
