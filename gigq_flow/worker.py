"""``Worker``: claims ready jobs, imports and calls their functions, records outcomes."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import signal
import threading
import uuid
from types import FrameType, TracebackType
from typing import Any, Callable

from .errors import ConfigurationError, DatabaseError, SerializationError
from .results import ParentResults
from .serialization import dumps, loads
from .store import open_store
from .store.base import ClaimedJob

logger = logging.getLogger(__name__)

DEFAULT_POLLING_INTERVAL = 5.0
DATABASE_ERROR_BACKOFF = 1.0


def accepts_parent_results(func: Callable) -> bool:
    """True when ``func`` takes a ``parent_results`` parameter or ``**kwargs``."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "parent_results" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Worker:
    """Runs jobs from a queue until stopped.

    ``start()`` blocks (SIGINT/SIGTERM stop it gracefully when called on the main
    thread); ``start_background()`` returns at once; ``with Worker(...)`` runs in the
    background inside the block. With ``concurrency > 1`` that many threads each
    claim and run jobs, with ids ``f"{worker_id}-{i}"``. An idle thread wakes as soon
    as work appears; ``polling_interval`` is only its longest sleep.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        worker_id: str | None = None,
        polling_interval: float = DEFAULT_POLLING_INTERVAL,
        concurrency: int = 1,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be an int >= 1, got {concurrency!r}")
        if isinstance(polling_interval, bool) or not isinstance(polling_interval, (int, float)) \
                or polling_interval <= 0:
            raise ConfigurationError(
                f"polling_interval must be a number of seconds > 0, got {polling_interval!r}"
            )
        self.db_path = os.fspath(db_path)
        self.worker_id = worker_id or f"worker-{uuid.uuid4()}"
        self.polling_interval = polling_interval
        self.concurrency = concurrency
        self.running = False
        self.store = open_store(db_path)
        self._local = threading.local()
        self._background: threading.Thread | None = None

    # -- one job ----------------------------------------------------------------------------
    @property
    def current_worker_id(self) -> str:
        """The id this thread claims under."""
        return getattr(self._local, "worker_id", self.worker_id)

    def process_one(self) -> bool:
        """Time out overdue jobs, then claim and run one ready job; False if none was ready."""
        self.store.expire_timeouts()
        claim = self.store.claim(self.current_worker_id)
        if claim is None:
            return False
        logger.info("%s: running job %s (%s)", claim.worker_id, claim.id, claim.name)
        self._run(claim)
        return True

    def _run(self, claim: ClaimedJob) -> None:
        try:
            func = self._import(claim.function_module, claim.function_name)
            params = loads(claim.params, claim.serializer)
            if claim.has_dependencies and self._wants_parent_results(claim, func):
                params["parent_results"] = self._parent_results(claim.id)
        except Exception as exc:  # deterministic: retrying cannot help
            self._finish_failed(claim, f"cannot start job: {describe_error(exc)}", retry=False)
            return
        try:
            result = func(**params)
        except Exception as exc:
            logger.info("job %s failed on attempt %d: %s", claim.id, claim.attempts, exc)
            self._finish_failed(claim, describe_error(exc), retry=claim.attempts < claim.max_attempts)
            return
        try:
            encoded = None if result is None else dumps(result, claim.serializer)
        except SerializationError as exc:
            self._finish_failed(claim, f"cannot store the result: {exc}", retry=False)
            return
        if not self.store.complete(claim, encoded):
            logger.warning("job %s: result discarded, the job was reclaimed", claim.id)

    def _finish_failed(self, claim: ClaimedJob, error: str, *, retry: bool) -> None:
        if not self.store.fail(claim, error, retry=retry):
            logger.warning("job %s: failure discarded, the job was reclaimed", claim.id)

    @staticmethod
    def _import(module_name: str, function_name: str) -> Callable:
        module = importlib.import_module(module_name)
        try:
            return getattr(module, function_name)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no function {function_name!r}") from None

    @staticmethod
    def _wants_parent_results(claim: ClaimedJob, func: Callable) -> bool:
        if claim.pass_parent_results is not None:
            return claim.pass_parent_results
        return accepts_parent_results(func)

    def _parent_results(self, job_id: str) -> ParentResults:
        return ParentResults([
            (parent.id, parent.name, loads(parent.result, parent.serializer))
            for parent in self.store.parent_results(job_id)
        ])

    # -- the loop -------------------------------------------------------------------------
    def _loop(self, index: int) -> None:
        self._local.worker_id = (
            self.worker_id if self.concurrency == 1 else f"{self.worker_id}-{index}"
        )
        logger.info("worker thread %s started", self.current_worker_id)
        try:
            while self.running:
                try:
                    if self.process_one():
                        continue
                    due = self.store.next_due()
                    idle = self.polling_interval if due is None else min(self.polling_interval, due)
                    self.store.wait_for_work(idle)
                except DatabaseError:
                    logger.exception("worker thread %s: database error", self.current_worker_id)
                    self.store.wait_for_work(DATABASE_ERROR_BACKOFF)
        finally:
            logger.info("worker thread %s stopped", self.current_worker_id)
            self.store.close()

    def _run_threads(self) -> None:
        if self.concurrency == 1:
            self._loop(0)
            return
        threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"{self.worker_id}-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)

    def start(self) -> None:
        """Run until ``stop()`` or, on the main thread, SIGINT/SIGTERM; running jobs finish."""
        self.running = True
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        logger.info("worker %s started on %s", self.worker_id, self.db_path)
        try:
            self._run_threads()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            logger.info("worker %s stopped", self.worker_id)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info("worker %s: signal %d, finishing current jobs", self.worker_id, signum)
        self.stop()

    def start_background(self) -> threading.Thread:
        """Run the worker in daemon threads and return at once."""
        if self._background is not None and self._background.is_alive():
            raise ConfigurationError(f"worker {self.worker_id} is already running")
        self.running = True
        self._background = threading.Thread(
            target=self._run_threads, name=f"gigq-flow-{self.worker_id}", daemon=True
        )
        self._background.start()
        return self._background

    def stop(self, wait: bool = False, timeout: float | None = None) -> None:
        """Claim nothing more; running jobs finish. ``wait`` joins background threads."""
        self.running = False
        self.store.wake_all()
        if wait and self._background is not None:
            self._background.join(timeout)

    def close(self) -> None:
        """Close this thread's connection."""
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
        return f"Worker({self.db_path!r}, worker_id={self.worker_id!r}, concurrency={self.concurrency})"
