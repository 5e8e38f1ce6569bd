"""The worker's path through the SQL store: claim, complete, fail, time out, reclaim
the jobs of lost workers, release a stopping worker's jobs; the worker registry."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..clock import later_iso, now_iso
from ..job import CACHE_USE
from .contract import REUSED, CacheProbe, ClaimedJob
from .sql_base import SQLBase
from .statements import COMPLETE_SET, HELD, claimed_job
from .transport import Tx

logger = logging.getLogger(__name__)


class SQLAttempts(SQLBase):
    """Attempts at jobs, each write fenced by its ``execution_id``."""

    # -- the worker's path --------------------------------------------------------------------
    # A job row holds its latest attempt (``execution_id``, ``worker_id``, ``started_at``,
    # ``completed_at``, ``result``, ``error``) while it runs and once it completed or failed
    # for good. An attempt that ends any other way (a retry, a timeout, a lost worker, a
    # shutdown, a requeue) moves to ``ended_attempts``: the success path writes no
    # attempt row. Every write of an attempt is fenced by its ``execution_id``.
    def claim(self, worker_id: str, execution_id: str,
              probe: CacheProbe | None = None) -> ClaimedJob | None:
        claim = self.claim_row(worker_id, execution_id,
                               self._settler(worker_id, execution_id, probe))
        if claim is not None and claim.cache == REUSED:
            self.wake.bump()  # its children may be ready
        return claim

    def _settler(self, worker_id: str, execution_id: str, probe: CacheProbe | None
                 ) -> Callable[[Tx, Sequence[Any]], ClaimedJob]:
        """What a claim makes of its row: the ClaimedJob, completed already when the
        cache has its result (``REUSED``)."""
        def settle(tx: Tx, row: Sequence[Any]) -> ClaimedJob:
            claim = claimed_job(row, execution_id, worker_id)
            if probe is not None and claim.cache == CACHE_USE and claim.map_param is None \
                    and self.reuse_at_claim(tx, claim, probe):
                return claim._replace(cache=REUSED)
            return claim

        return settle

    def complete(self, claim: ClaimedJob, result: str | bytes | None) -> bool:
        stored = self.blob(result)
        if not claim.has_children and self.complete_childless(claim, stored):
            self.wake.bump()
            return True
        return self._run_and_wake(lambda tx: self._complete_in(tx, claim, stored))

    def complete_and_claim(self, done: Sequence[tuple[ClaimedJob, str | bytes | None]],
                           worker_id: str, execution_ids: Sequence[str],
                           probe: CacheProbe | None = None, *, leading: bool = False
                           ) -> tuple[list[bool], list[ClaimedJob]]:
        settlers = [self._settler(worker_id, execution_id, probe)
                    for execution_id in execution_ids]

        def body(tx: Tx) -> tuple[list[bool], list[ClaimedJob]]:
            completed = self.complete_many_in(tx, done)
            return completed, self.claim_many_in(tx, worker_id, execution_ids, settlers)

        completed, claimed = self.db.run(body, patient=True)
        # Fewer than asked: it took every ready job, no other thread would find one, and
        # the run is not done.
        if not claimed or (len(claimed) == len(execution_ids) and not leading):
            self.wake.bump()
        return completed, claimed

    def complete_many_in(self, tx: Any, done: Sequence[tuple[ClaimedJob, str | bytes | None]]
                         ) -> list[bool]:
        """``complete`` each of ``done`` inside ``tx``: whether each was recorded."""
        completed = []
        for claim, result in done:
            stored = self.blob(result)
            completed.append((not claim.has_children
                              and self.complete_childless(claim, stored, tx))
                             or self._complete_in(tx, claim, stored))
        return completed

    def unclaim(self, claims: Sequence[ClaimedJob]) -> int:
        """Return claimed jobs whose steps never started to the queue, as if unclaimed."""
        def body(tx: Tx) -> int:
            now = now_iso()
            return sum(tx.execute(
                "UPDATE jobs SET status = 'pending', worker_id = NULL, execution_id = NULL, "
                "started_at = NULL, updated_at = ?, "
                "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
                f"WHERE {HELD}", (now, claim.id, claim.execution_id)).rowcount
                for claim in claims)

        returned = self.db.run(body)
        self.wake.bump()
        return returned

    def _complete_in(self, tx: Tx, claim: ClaimedJob, stored: Any) -> bool:
        now = now_iso()
        if tx.execute(f"UPDATE jobs SET {COMPLETE_SET} WHERE {HELD}",
                      (stored, now, now, claim.id, claim.execution_id)).rowcount != 1:
            self._note_stale(tx, claim, "completed", now)
            return False
        # A statement of its own: under a server's read-committed isolation it sees an
        # edge that a submit, which held this row locked, committed meanwhile.
        self.release_children(tx, claim.id)
        return True

    def fail(self, claim: ClaimedJob, error: str, *, retry: bool,
             traceback: str | None = None) -> bool:
        def body(tx: Tx) -> bool:
            now = now_iso()
            if retry:
                if not self._archive_attempt(tx, claim.id, claim.execution_id, "failed", now,
                                             error, traceback):
                    self._note_stale(tx, claim, "failed", now)
                    return False
                self._back_to_pending(tx, claim.id, error, now, claim.retry_delay)
                self.announce(tx)
                return True
            if tx.execute(
                f"UPDATE jobs SET status = 'failed', error = ?, traceback = ?, updated_at = ?, "
                f"completed_at = ? WHERE {HELD}",
                (error, traceback, now, now, claim.id, claim.execution_id),
            ).rowcount != 1:
                self._note_stale(tx, claim, "failed", now)
                return False
            self._propagate_failure(tx, claim.id, now)
            return True

        return self._run_and_wake(body)

    def _archive_attempt(self, tx: Tx, job_id: str, execution_id: str, status: str, now: str,
                         error: str | None, traceback: str | None = None) -> bool:
        """Move the attempt a running job row holds to ``ended_attempts``, ended with
        ``status``; False when the row no longer holds it (the attempt went stale)."""
        held = tx.execute(
            f"SELECT worker_id, started_at FROM jobs WHERE {HELD} {self.lock_update}",
            (job_id, execution_id),
        ).fetchone()
        if held is None:
            return False
        tx.execute(
            "INSERT INTO ended_attempts (id, job_id, worker_id, status, started_at, completed_at, "
            "result, error, traceback) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (execution_id, job_id, held[0], status, held[1], now, error, traceback),
        )
        return True

    @staticmethod
    def _note_stale(tx: Tx, claim: ClaimedJob, status: str, now: str) -> None:
        """An attempt ended after its job was reclaimed: keep the job, note it on the attempt."""
        logger.warning("job %s: attempt %s ended after the job was reclaimed; its outcome is "
                       "discarded", claim.id, claim.execution_id)
        tx.execute(
            "UPDATE ended_attempts SET completed_at = COALESCE(completed_at, ?), "
            "error = COALESCE(error || '; ', '') || ? WHERE job_id = ? AND id = ?",
            (now, f"stale: attempt ended as {status} after the job was reclaimed; "
                  "outcome discarded", claim.id, claim.execution_id),
        )

    @staticmethod
    def _back_to_pending(tx: Tx, job_id: str, error: str, now: str, retry_delay: float) -> None:
        """A job whose attempt ended (already archived) waits ``retry_delay`` for the next."""
        tx.execute(
            "UPDATE jobs SET status = 'pending', error = ?, updated_at = ?, "
            "worker_id = NULL, execution_id = NULL, retry_after = ? WHERE id = ?",
            (error, now, later_iso(retry_delay), job_id),
        )

    def _end_attempt(self, tx: Tx, job_id: str, execution_id: str, attempt_status: str,
                     final_status: str, error: str, now: str) -> bool:
        """End a running attempt its worker did not finish: requeue the job while attempts
        remain, else end it ``final_status``. False when the attempt had already ended."""
        if not self._archive_attempt(tx, job_id, execution_id, attempt_status, now, error):
            return False
        attempts, max_attempts, retry_delay = tx.execute(
            "SELECT attempts, max_attempts, retry_delay FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        logger.warning("job %s: %s", job_id, error)
        if attempts < max_attempts:
            self._back_to_pending(tx, job_id, error, now, retry_delay)
        else:
            tx.execute(
                "UPDATE jobs SET status = ?, error = ?, updated_at = ?, completed_at = ?, "
                "worker_id = NULL, execution_id = NULL WHERE id = ?",
                (final_status, error, now, now, job_id),
            )
            self._propagate_failure(tx, job_id, now)
        return True

    def time_out(self, claim: ClaimedJob) -> bool:
        def body(tx: Tx) -> bool:
            ended = self._end_attempt(
                tx, claim.id, claim.execution_id, "timeout", "timeout",
                f"Job timed out after {claim.timeout:g} seconds", now_iso(),
            )
            if ended:
                self.announce(tx)
            return ended

        return self._run_and_wake(body)

    def reclaim_lost(self) -> int:
        """Running jobs of workers whose heartbeat stopped for longer than their
        lease_timeout are requeued while attempts remain, else failed."""
        clock = time.time()
        lost_sql = (
            "SELECT instance, id FROM workers WHERE stopped_at IS NULL "
            "AND reclaimed_at IS NULL AND last_heartbeat + lease_timeout < ?"
        )
        if not self.db.read(lost_sql, (clock,)):
            return 0

        def body(tx: Tx) -> int:
            now = now_iso()
            reclaimed = 0
            lost = tx.execute(f"{lost_sql} {self.lock_skip}", (clock,)).fetchall()
            for instance, worker in lost:
                tx.execute("UPDATE workers SET reclaimed_at = ? WHERE instance = ?",
                           (now, instance))
                # No index leads to running jobs: this reads the table, as rarely as workers die.
                running = tx.execute(
                    f"SELECT id, execution_id FROM jobs WHERE status = 'running' "
                    f"AND execution_id LIKE ? {self.lock_update}",
                    (f"{instance}-%",),
                ).fetchall()
                error = f"worker {worker} stopped renewing its lease (presumed dead)"
                for job_id, execution_id in running:
                    reclaimed += self._end_attempt(tx, job_id, execution_id, "lost", "failed",
                                                   error, now)
            self.announce(tx)
            return reclaimed

        reclaimed = self.db.run(body)
        self.wake.bump()
        return reclaimed

    def release(self, claims: Sequence[ClaimedJob]) -> int:
        """Return jobs a stopping worker could not finish to the queue; the interrupted
        attempt does not count. Returns how many were still this worker's."""

        def body(tx: Tx) -> int:
            now = now_iso()
            released = 0
            for claim in claims:
                if not self._archive_attempt(
                    tx, claim.id, claim.execution_id, "interrupted", now,
                    "worker shut down before the job finished; returned to the queue",
                ):
                    continue
                released += 1
                tx.execute(
                    "UPDATE jobs SET status = 'pending', "
                    "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
                    "worker_id = NULL, execution_id = NULL, updated_at = ? WHERE id = ?",
                    (now, claim.id),
                )
            self.announce(tx)
            return released

        released = self.db.run(body)
        self.wake.bump()
        return released

    # -- output -------------------------------------------------------------------------------
    def append_output(self, claim: ClaimedJob, text: str) -> None:
        self.db.run(lambda tx: tx.execute(
            """INSERT INTO attempt_output (job_id, attempt_id, seq, text)
               SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ? FROM attempt_output
               WHERE job_id = ? AND attempt_id = ?""",
            (claim.id, claim.execution_id, text, claim.id, claim.execution_id),
        ))

    # -- workers ------------------------------------------------------------------------------
    def register_worker(self, instance: str, worker_id: str, concurrency: int,
                        lease_timeout: float) -> None:
        self.db.run(lambda tx: tx.execute(
            """INSERT INTO workers (instance, id, host, pid, concurrency, lease_timeout,
                   started_at, last_heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (instance) DO UPDATE SET last_heartbeat = excluded.last_heartbeat,
                   stopped_at = NULL, reclaimed_at = NULL""",
            (instance, worker_id, socket.gethostname(), os.getpid(), concurrency, lease_timeout,
             now_iso(), time.time()),
        ))

    def heartbeat(self, instance: str) -> None:
        """Renew the lease of every running attempt of the worker ``instance``."""
        self.db.run(lambda tx: tx.execute(
            "UPDATE workers SET last_heartbeat = ?, reclaimed_at = NULL WHERE instance = ?",
            (time.time(), instance),
        ))

    def unregister_worker(self, instance: str) -> None:
        self.db.run(lambda tx: tx.execute(
            "UPDATE workers SET stopped_at = ? WHERE instance = ?", (now_iso(), instance)))
