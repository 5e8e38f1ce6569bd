"""What every part of the SQL store shares: the backend's hooks and settings, and the
propagation of a failure to a job's descendants.

A backend (:mod:`.sqlite`, :mod:`.postgres`) subclasses :class:`~.sql.SQLStore` and
fills in the hooks; :mod:`.sql_jobs`, :mod:`.sql_attempts`, :mod:`.sql_reads` and
:mod:`.sql_copy` hold the job semantics, written once in SQL both backends run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .contract import CacheProbe, ClaimedJob
from .statements import DESCENDANTS, RELEASE_CHILDREN, chunks, marks
from .transport import Transport, Tx
from .wakeup import WakeSignal


class SQLBase:
    """The settings and hooks of a SQL backend, and what the parts of the store share."""

    location: str
    db: Transport
    wake: WakeSignal
    #: The column that orders rows created in the same microsecond by insertion.
    insertion_order = "rowid"
    #: The column that orders a job's attempts started in the same microsecond.
    execution_order = "id"
    #: Suffixes that lock the rows a transaction reads before acting on them. SQLite's
    #: write transactions are serialized (BEGIN IMMEDIATE) and need none; a server
    #: backend locks the parents a submit counts (against a concurrent completion or
    #: failure), the lost workers it reclaims (against a concurrent reclaim) and their
    #: running jobs (against a concurrent completion).
    lock_shared = ""
    lock_skip = ""
    lock_update = ""

    # -- hooks for the backend --------------------------------------------------------------
    def claim_row(self, worker_id: str, execution_id: str,
                  settle: Callable[[Tx, Sequence[Any]], ClaimedJob]) -> ClaimedJob | None:
        """In one (patient) write transaction, mark the best ready job running
        (CLAIM_SET), then return what ``settle`` makes, in the same transaction, of its
        CLAIMED_COLUMNS followed by the job's row key; None when no job is ready.

        The start time must be read once the claim is ordered after every commit it sees
        (the write lock, a row lock), so that a job never starts before its parents'
        ``completed_at``.
        """
        raise NotImplementedError

    def reuse_at_claim(self, tx: Tx, claim: ClaimedJob, probe: CacheProbe) -> bool:
        """Complete a claimed job of a cached run from the cache, in the claim's
        transaction, when ``probe`` finds its key (see :mod:`.sql_cache`)."""
        raise NotImplementedError

    def claim_in(self, tx: Any, worker_id: str, execution_id: str,
                 settle: Callable[[Tx, Sequence[Any]], ClaimedJob]) -> ClaimedJob | None:
        """``claim_row``'s work inside the write transaction ``tx``."""
        raise NotImplementedError

    def claim_many_in(self, tx: Any, worker_id: str, execution_ids: Sequence[str],
                      settlers: Sequence[Callable[[Tx, Sequence[Any]], ClaimedJob]]
                      ) -> list[ClaimedJob]:
        """Claim up to one job per id of ``execution_ids`` inside ``tx``, in claim order."""
        claimed = []
        for execution_id, settle in zip(execution_ids, settlers, strict=True):
            claim = self.claim_in(tx, worker_id, execution_id, settle)
            if claim is None:
                break
            claimed.append(claim)
        return claimed

    def complete_childless(self, claim: ClaimedJob, result: Any, tx: Any = None) -> bool:
        """Complete a job that has no children in one statement (inside ``tx`` if given),
        if the backend can check and write atomically; False when it did not (children, a
        stale claim, or no way)."""
        return False

    def blob(self, value: str | bytes | None) -> Any:
        """An encoded payload as the driver stores it."""
        return value

    def announce(self, tx: Tx) -> None:
        """Tell other processes, inside the transaction, that work may be ready."""

    def begin_snapshot(self, tx: Tx) -> None:
        """Make the reads of ``tx`` one consistent snapshot (SQLite's write lock does)."""

    def release_children(self, tx: Tx, job_id: str) -> None:
        """Count a completed parent off each of its children; announce the children that
        became ready."""
        counts = tx.execute(f"{RELEASE_CHILDREN} RETURNING pending_deps", (job_id,)).fetchall()
        if any(count[0] == 0 for count in counts):
            self.announce(tx)

    def _run_and_wake(self, body: Callable[[Tx], Any]) -> Any:
        """Run ``body`` in a write transaction; wake this process's idle threads when it
        returns something true (it changed a job)."""
        changed = self.db.run(body)
        if changed:
            self.wake.bump()
        return changed

    @staticmethod
    def _drop_unreferenced_blobs(tx: Tx, digests: Sequence[str]) -> None:
        """Delete the stored results among ``digests`` that no job and no cache entry
        references any more (one scan of each table, only when such results exist)."""
        stored: set[str] = set()
        for chunk in chunks(sorted(set(digests))):
            stored.update(row[0] for row in tx.execute(
                f"SELECT digest FROM result_blobs WHERE digest IN ({marks(chunk)})", chunk))
        if not stored:
            return
        for table in ("jobs", "cache_entries"):
            stored -= {row[0] for row in tx.execute(
                f"SELECT DISTINCT result_digest FROM {table} WHERE result_digest IS NOT NULL")}
        for chunk in chunks(sorted(stored)):
            tx.execute(f"DELETE FROM result_blobs WHERE digest IN ({marks(chunk)})", chunk)

    def _propagate_failure(self, tx: Tx, job_id: str, now: str) -> None:
        """Every pending descendant of ``job_id`` becomes upstream_failed.

        Without serialized writes, the statement may wait for a submit that locked a
        descendant and added children its snapshot cannot see: it runs again until it
        changes nothing."""
        name, status = tx.execute(
            "SELECT name, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        while tx.execute(
            DESCENDANTS + """UPDATE jobs SET status = 'upstream_failed', error = ?,
                   updated_at = ?, completed_at = ?
               WHERE id IN (SELECT id FROM down) AND status = 'pending'""",
            (job_id, f"upstream job {name!r} ({job_id}) ended {status}", now, now),
        ).rowcount and self.lock_shared:
            pass
