"""Incremental runs in the SQL store: cache entries, large results stored once by digest,
and the completions that write and reuse them.

A job of a cached run records ``result_digest``, the digest of its encoded result. A
result of at most INLINE_RESULT_BYTES stays in ``jobs.result`` (where GigQ's SQL reads
it) and in its cache entry; a larger one is stored once in ``result_blobs``, and the job
and the entry reference it: reusing it copies nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..clock import now_iso
from .contract import CacheKey, CacheLookup, CacheProbe, ClaimedJob, ParentResult, Row
from .sql_base import SQLBase
from .statements import HELD, PARENT_DIGESTS, READY_CACHED_CHILDREN, claimed_job
from .transport import Tx

REUSE_CASCADE_LIMIT = 1000
"""Jobs one claim's transaction reuses after the claimed one, at most: a long reusable
DAG is done in transactions of about this size (a few tens of milliseconds each)."""
INLINE_RESULT_BYTES = 1024
"""Results up to this size are kept with the job and the entry; larger ones as a blob."""

USED_AT_PRECISION = timedelta(hours=1)
"""An entry's ``used_at`` is renewed by a reuse at most this often: most reuses then
write nothing to the entry."""
ENTRY_IS = """step = ? AND name = ? AND code_digest = ? AND params_digest = ?
    AND parents_digest = ? AND settings = ?"""
"""An entry by its primary key: the parts of a key (a lookup of one b-tree)."""
ENTRY = f"""SELECT result_digest, result, job_id, workflow_id, used_at FROM cache_entries
    WHERE {ENTRY_IS}"""
# On a miss, how much of the key the earlier entries of the same step (function and task
# name) share; each EXISTS is one probe of a prefix of the primary key.
SAME_STEP = "SELECT 1 FROM cache_entries WHERE step = ? AND name = ?"
SHARED = f"""SELECT
        EXISTS ({SAME_STEP}) AS same_step,
        EXISTS ({SAME_STEP} AND code_digest = ?) AS same_code,
        EXISTS ({SAME_STEP} AND code_digest = ? AND params_digest = ?) AS same_params,
        EXISTS ({SAME_STEP} AND code_digest = ? AND params_digest = ?
                AND parents_digest = ?) AS same_parents"""
COMPLETE_FROM_CACHE = """status = 'completed', result = ?, error = NULL, completed_at = ?,
    updated_at = ?, result_digest = ?, cache_note = ?"""
CLAIMED_BY = "worker_id = ?, started_at = ?, attempts = attempts + 1, execution_id = ?"
"""A pending job's attempt, set with its completion (CLAIM_SET without the status)."""
ENTRY_COLUMNS = """key, step, name, code_digest, params_digest, parents_digest, settings,
    result_digest, serializer, result, job_id, workflow_id, created_at, used_at"""


def identity(key: CacheKey) -> tuple[str, ...]:
    """The primary key of ``key``'s entry, in ENTRY_IS's order."""
    return key.step, key.name, key.code, key.params, key.parents, key.settings


def find(fetch: Callable[[str, Sequence[Any]], Sequence[Any] | None],
         key: CacheKey) -> tuple[CacheLookup, Sequence[Any] | None]:
    """The lookup of ``key``, reading with ``fetch`` (one row of a statement), and the
    entry's row on a hit."""
    entry = fetch(ENTRY, identity(key))
    if entry is not None:
        return CacheLookup(entry[0], entry[2], entry[3], 4), entry
    step = (key.step, key.name)
    matched = fetch(SHARED, (*step, *step, key.code, *step, key.code, key.params,
                             *step, key.code, key.params, key.parents)) or ()
    shared = 0
    for part in matched:
        if not part:
            break
        shared += 1
    return CacheLookup(None, None, None, shared), None


class SQLCache(SQLBase):
    """The cache of step results: lookups, reuse, and completions that feed it."""

    def find_cached(self, key: CacheKey) -> CacheLookup:
        def fetch(sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
            rows = self.db.read(sql, args)
            return tuple(rows[0].values()) if rows else None

        return find(fetch, key)[0]

    def reuse_at_claim(self, tx: Tx, claim: ClaimedJob, probe: CacheProbe) -> bool:
        reusable = self._reusable(tx, claim, probe, claimed=True)
        if reusable is None or not self._complete_from_entry(tx, claim, *reusable):
            return False
        self._cascade(tx, claim, probe)
        return True

    def _reusable(self, tx: Tx, claim: ClaimedJob, probe: CacheProbe, *, claimed: bool
                  ) -> tuple[CacheKey, str, Sequence[Any]] | None:
        """The key, note and entry that would complete ``claim`` from the cache; None when
        it runs (a claimed job's probe is told why)."""
        parents = ([ParentResult(*row) for row in tx.execute(PARENT_DIGESTS, (claim.id,))]
                   if claim.has_dependencies else [])
        keyed = probe.key(claim, parents)
        if keyed is None:
            return None
        key, unknown = keyed
        found, entry = find(lambda sql, args: tx.execute(sql, args).fetchone(), key)
        if entry is None:
            if claimed:
                probe.missed(claim, key, unknown, found)
            return None
        return key, probe.hit_note(found, unknown), entry

    def _cascade(self, tx: Tx, reused: ClaimedJob, probe: CacheProbe) -> None:
        """Reuse, depth first, the jobs of cached runs that ``reused`` made ready and whose
        keys have entries, each as an attempt of the same worker: a reusable part of a DAG
        costs one transaction (at most REUSE_CASCADE_LIMIT jobs)."""
        frontier, budget = [reused.id], REUSE_CASCADE_LIMIT
        while frontier and budget > 0:
            for row in tx.execute(READY_CACHED_CHILDREN, (frontier.pop(), now_iso())).fetchall():
                child = claimed_job(row, probe.next_attempt(), reused.worker_id)
                reusable = self._reusable(tx, child, probe, claimed=False)
                if reusable is None:
                    continue
                if self._complete_from_entry(tx, child, *reusable, claimed=False):
                    frontier.append(child.id)
                    budget -= 1

    def reuse(self, claim: ClaimedJob, key: CacheKey, note: str) -> bool:
        def body(tx: Tx) -> bool:
            entry = tx.execute(ENTRY, identity(key)).fetchone()
            return entry is not None and self._complete_from_entry(tx, claim, key, note, entry)

        return self._run_and_wake(body)

    def _complete_from_entry(self, tx: Tx, claim: ClaimedJob, key: CacheKey, note: str,
                             entry: Sequence[Any], *, claimed: bool = True) -> bool:
        """Complete the job with the result of ``key``'s entry (an ENTRY row), as the
        attempt ``claim`` holds (``claimed``), or claiming it for that attempt first if it
        is still pending; False when the claim went stale or the job is not pending."""
        now = now_iso()
        fence: tuple[str, ...]
        if claimed:
            sql, fence = f"UPDATE jobs SET {COMPLETE_FROM_CACHE}, cached_from = ? WHERE {HELD}", (
                claim.id, claim.execution_id)
        else:
            sql, fence = (f"UPDATE jobs SET {CLAIMED_BY}, {COMPLETE_FROM_CACHE}, cached_from = ? "
                          "WHERE id = ? AND status = 'pending'", (claim.id,))
        claiming = () if claimed else (claim.worker_id, now, claim.execution_id)
        if tx.execute(sql, (*claiming, entry[1], now, now, entry[0], note, entry[2], *fence)
                      ).rowcount != 1:
            return False
        if entry[4] < (datetime.now() - USED_AT_PRECISION).isoformat():
            tx.execute(f"UPDATE cache_entries SET used_at = ? WHERE {ENTRY_IS}",
                       (now, *identity(key)))
        self.release_children(tx, claim.id)
        return True

    def complete_cached(self, claim: ClaimedJob, result: str | bytes | None, digest: str,
                        key: CacheKey, note: str, *, refresh: bool) -> bool:
        stored = self.blob(result)
        inline = result is None or len(result) <= INLINE_RESULT_BYTES
        kept = stored if inline else None

        def body(tx: Tx) -> bool:
            now = now_iso()
            if tx.execute(
                f"UPDATE jobs SET {COMPLETE_FROM_CACHE} WHERE {HELD}",
                (kept, now, now, digest, note, claim.id, claim.execution_id),
            ).rowcount != 1:
                return False
            if not inline:
                tx.execute(
                    "INSERT INTO result_blobs (digest, serializer, data, size, created_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                    (digest, claim.serializer, stored, len(result or ""), now),
                )
            replaced = None
            if refresh:
                old = tx.execute(f"SELECT result_digest FROM cache_entries WHERE {ENTRY_IS}",
                                 identity(key)).fetchone()
                replaced = old[0] if old else None
                tx.execute(f"DELETE FROM cache_entries WHERE {ENTRY_IS}", identity(key))
            # Two workers may reach the same key at once: both results are right, the
            # first entry is kept.
            tx.execute(
                f"""INSERT INTO cache_entries ({ENTRY_COLUMNS})
                    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, id, workflow_id, ?, ? FROM jobs
                    WHERE id = ? ON CONFLICT DO NOTHING""",
                (key.key, key.step, key.name, key.code, key.params, key.parents, key.settings,
                 digest, claim.serializer, kept, now, now, claim.id),
            )
            if replaced is not None and replaced != digest:
                self._drop_unreferenced_blobs(tx, (replaced,))
            self.release_children(tx, claim.id)
            return True

        return self._run_and_wake(body)

    def cache_entries(self, limit: int) -> list[Row]:
        return self.db.read(
            """SELECT e.key, e.step, e.name, e.workflow_id, e.job_id, e.created_at,
                    e.used_at, e.result_digest, e.serializer,
                    COALESCE(b.size, LENGTH(e.result), 0) AS size
                FROM cache_entries e LEFT JOIN result_blobs b ON b.digest = e.result_digest
                ORDER BY e.used_at DESC, e.key LIMIT ?""",
            (limit,),
        )

    def clear_cache(self, before_timestamp: str | None = None) -> int:
        condition: str = ""
        args: tuple[str, ...] = ()
        if before_timestamp:
            condition, args = " WHERE used_at < ?", (before_timestamp,)

        def body(tx: Tx) -> int:
            digests = [row[0] for row in tx.execute(
                f"SELECT DISTINCT result_digest FROM cache_entries{condition}", args)]
            cleared = tx.execute(f"DELETE FROM cache_entries{condition}", args).rowcount
            self._drop_unreferenced_blobs(tx, digests)
            return cleared

        return self.db.run(body)
