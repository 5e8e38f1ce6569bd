"""A background processing service: N worker processes on one queue, kept running.

This is the service that GigQ's worker guide sketches, made robust:

- it starts ``--workers`` worker processes (each a :class:`gigq_flow.Worker` with
  ``--concurrency`` threads) on the queue ``--db``;
- it checks them every ``--check-interval`` seconds and restarts any that died (a crash,
  an out-of-memory kill); a worker that dies within a few seconds of its start is
  restarted after a pause, so a broken setup does not spin. The jobs a dead worker was
  running are taken over by the others once their lease (``--lease-timeout``) expires;
- SIGINT (Ctrl-C) or SIGTERM stops it gracefully: every worker stops claiming, lets its
  running jobs finish within ``--grace-period`` seconds (unfinished ones go back to the
  queue), and the service exits 0 once they have all exited. A second signal makes the
  workers exit at once;
- the workers are in their own process group, so a Ctrl-C reaches them only through the
  service (once), and a worker whose service vanished (``kill -9``) stops by itself:
  nothing is left behind.

Run it next to the code of your jobs (the workers import job functions by module and
name: the working directory and PYTHONPATH are searched)::

    python examples/worker_service.py --db jobs.db --workers 4

Under systemd, ``ExecStart=`` this command and ``KillSignal=SIGTERM`` (the default) with
``TimeoutStopSec=`` above the grace period.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from gigq_flow import Worker

logger = logging.getLogger("worker_service")

RAPID_EXIT_SECONDS = 2.0
"""A worker that dies sooner than this after its start is restarted only after a pause."""
RESTART_PAUSE_SECONDS = 5.0
ORPHAN_CHECK_SECONDS = 1.0
"""How often a worker checks that its service is still there."""
STOP_MARGIN_SECONDS = 10.0
"""How long past the grace period the service waits for workers before killing them."""


# -- the worker process -----------------------------------------------------------------
def run_worker(db: str, worker_id: str, options: dict[str, Any]) -> None:
    """Body of a worker process: run jobs until SIGINT/SIGTERM (Worker.start handles both)."""
    os.setpgrp()  # Ctrl-C in the terminal reaches the service only; it forwards one SIGTERM
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {worker_id} %(message)s")
    service = os.getppid()
    threading.Thread(target=_stop_when_orphaned, args=(service,), daemon=True).start()
    Worker(db, worker_id=worker_id, **options).start()


def _stop_when_orphaned(service: int) -> None:
    while os.getppid() == service:
        time.sleep(ORPHAN_CHECK_SECONDS)
    logger.warning("the service (pid %d) is gone; stopping", service)
    os.kill(os.getpid(), signal.SIGTERM)


# -- the service ----------------------------------------------------------------------
@dataclass
class Slot:
    """One of the N places a worker process runs in."""

    index: int
    process: Any = None
    started: float = 0.0
    generation: int = 0
    restart_at: float = field(default=0.0)


class Service:
    def __init__(self, db: str, workers: int, *, prefix: str, check_interval: float,
                 worker_options: dict[str, Any]) -> None:
        self.db = db
        self.prefix = prefix
        self.check_interval = check_interval
        self.worker_options = worker_options
        self.slots = [Slot(index) for index in range(workers)]
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        self.signals = 0

    def start_worker(self, slot: Slot) -> None:
        worker_id = f"{self.prefix}-{slot.index}.{slot.generation}"
        slot.process = self.context.Process(
            target=run_worker, args=(self.db, worker_id, self.worker_options),
            name=worker_id)
        slot.process.start()
        slot.started = time.monotonic()
        logger.info("started worker %s (pid %d)", worker_id, slot.process.pid)

    def on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1
        if self.signals == 1:
            logger.info("%s: stopping the workers gracefully (again to force)",
                        signal.Signals(signum).name)
            self.stopping.set()
        else:
            logger.warning("second signal: the workers exit now")
            self.signal_workers()

    def signal_workers(self) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                os.kill(slot.process.pid, signal.SIGTERM)

    def supervise(self) -> None:
        """Restart dead workers until a signal arrives."""
        for slot in self.slots:
            self.start_worker(slot)
        while not self.stopping.wait(self.check_interval):
            now = time.monotonic()
            for slot in self.slots:
                if slot.process.is_alive() or now < slot.restart_at:
                    continue
                if slot.restart_at == 0.0:  # just found dead
                    logger.warning("worker %s (pid %d) died with exit code %s",
                                   slot.process.name, slot.process.pid, slot.process.exitcode)
                    if now - slot.started < RAPID_EXIT_SECONDS:
                        slot.restart_at = now + RESTART_PAUSE_SECONDS
                        logger.warning("it died %.1f s after its start; restarting in %.0f s",
                                       now - slot.started, RESTART_PAUSE_SECONDS)
                        continue
                slot.restart_at = 0.0
                slot.generation += 1
                self.start_worker(slot)

    def stop(self, timeout: float) -> bool:
        """SIGTERM every worker and wait; True if every running worker exited 0 in time."""
        running = [slot.process for slot in self.slots if slot.process.is_alive()]
        self.signal_workers()
        deadline = time.monotonic() + timeout
        clean = True
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.error("worker %s did not stop in time; killing it", process.name)
                process.kill()
                process.join()
            if process.exitcode != 0:
                logger.warning("worker %s exited with code %s", process.name, process.exitcode)
                clean = False
        logger.info("all workers stopped")
        return clean

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self.on_signal)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.supervise()
            grace = self.worker_options["grace_period"]
            return 0 if self.stop(grace + STOP_MARGIN_SECONDS) else 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="jobs.db", help="the queue file")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="worker processes (default: one per CPU)")
    parser.add_argument("--concurrency", type=int, default=1, help="threads per worker")
    parser.add_argument("--prefix", default="service", help="worker ids are PREFIX-N.GEN")
    parser.add_argument("--check-interval", type=float, default=1.0,
                        help="seconds between checks for dead workers")
    parser.add_argument("--polling-interval", type=float, default=5.0)
    parser.add_argument("--lease-timeout", type=float, default=30.0)
    parser.add_argument("--grace-period", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s service %(message)s")

    # The workers import job functions the way ``python -m`` would: from here first.
    sys.path.insert(0, os.getcwd())
    service = Service(
        args.db, args.workers, prefix=args.prefix, check_interval=args.check_interval,
        worker_options={"concurrency": args.concurrency,
                        "polling_interval": args.polling_interval,
                        "lease_timeout": args.lease_timeout,
                        "grace_period": args.grace_period},
    )
    return service.run()


if __name__ == "__main__":
    sys.exit(main())
