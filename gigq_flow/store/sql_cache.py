"""Incremental runs in the SQL store: cache entries, large results stored once by digest,
and the completions that write and reuse them.

A job of a cached run records ``result_digest``, the digest of its encoded result. A
result of at most INLINE_RESULT_BYTES stays in ``jobs.result`` (where GigQ's SQL reads
it) and in its cache entry; a larger one is stored once in ``result_blobs``, and the job
and the entry reference it: reusing it copies nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from .clock import now_iso
from .contract import CacheKey, CacheLookup, CacheProbe, ClaimedJob, ParentResult, Row
from .sql_base import SQLBase
from .statements import HELD, PARENT_DIGESTS
from .transport import Tx

INLINE_RESULT_BYTES = 1024
"""Results up to this size are kept with the job and the entry; larger ones as a blob."""

# One read answers a lookup: the entry of the key, or how much of the key the earlier
# entries of the same step (function and task name) share; each EXISTS is one probe of
# idx_cache_entries_step.
SAME_STEP = "SELECT 1 FROM cache_entries WHERE step = ? AND name = ?"
LOOKUP = f"""SELECT e.result_digest, e.job_id, e.workflow_id,
        EXISTS ({SAME_STEP}) AS same_step,
        EXISTS ({SAME_STEP} AND code_digest = ?) AS same_code,
        EXISTS ({SAME_STEP} AND code_digest = ? AND params_digest = ?) AS same_params,
        EXISTS ({SAME_STEP} AND code_digest = ? AND params_digest = ?
                AND parents_digest = ?) AS same_parents
    FROM (SELECT 1 AS one) AS probe LEFT JOIN cache_entries e ON e.key = ?"""
COMPLETE_FROM_CACHE = """status = 'completed', result = ?, error = NULL, completed_at = ?,
    updated_at = ?, result_digest = ?, cache_key = ?, cache_note = ?"""
ENTRY_COLUMNS = """key, step, name, code_digest, params_digest, parents_digest, settings,
    result_digest, serializer, result, job_id, workflow_id, created_at, hits"""


def lookup_args(key: CacheKey) -> tuple[str, ...]:
    step = (key.step, key.name)
    return (*step, *step, key.code, *step, key.code, key.params,
            *step, key.code, key.params, key.parents, key.key)


def lookup_of(row: Sequence[object]) -> CacheLookup:
    """A LOOKUP row as a CacheLookup: ``shared`` counts the parts matched, in order."""
    shared = 0
    for matched in row[3:]:
        if not matched:
            break
        shared += 1
    return CacheLookup(row[0], row[1], row[2], shared)  # type: ignore[arg-type]


class SQLCache(SQLBase):
    """The cache of step results: lookups, reuse, and completions that feed it."""

    def find_cached(self, key: CacheKey) -> CacheLookup:
        row = self.db.read(LOOKUP, lookup_args(key))[0]
        return lookup_of(list(row.values()))

    def reuse_at_claim(self, tx: Tx, claim: ClaimedJob, probe: CacheProbe) -> bool:
        parents = ([ParentResult(*row) for row in tx.execute(PARENT_DIGESTS, (claim.id,))]
                   if claim.has_dependencies else [])
        decision = probe(claim, parents,
                         lambda key: lookup_of(tx.execute(LOOKUP, lookup_args(key)).fetchone()))
        return decision is not None and self._complete_from_entry(tx, claim, *decision)

    def reuse(self, claim: ClaimedJob, key: CacheKey, note: str) -> bool:
        return self._run_and_wake(lambda tx: self._complete_from_entry(tx, claim, key, note))

    def _complete_from_entry(self, tx: Tx, claim: ClaimedJob, key: CacheKey, note: str) -> bool:
        """Complete the claimed job with the entry of ``key``'s result; False when the
        entry is gone (cleared since the lookup) or the claim went stale."""
        entry = tx.execute(
            "SELECT result_digest, result, job_id FROM cache_entries WHERE key = ?", (key.key,)
        ).fetchone()
        if entry is None:
            return False
        now = now_iso()
        if tx.execute(
            f"UPDATE jobs SET {COMPLETE_FROM_CACHE}, cached_from = ? WHERE {HELD}",
            (entry[1], now, now, entry[0], key.key, note, entry[2], claim.id,
             claim.execution_id),
        ).rowcount != 1:
            return False
        tx.execute("UPDATE cache_entries SET hits = hits + 1, used_at = ? WHERE key = ?",
                   (now, key.key))
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
                (kept, now, now, digest, key.key, note, claim.id, claim.execution_id),
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
                old = tx.execute("SELECT result_digest FROM cache_entries WHERE key = ?",
                                 (key.key,)).fetchone()
                replaced = old[0] if old else None
                tx.execute("DELETE FROM cache_entries WHERE key = ?", (key.key,))
            # Two workers may reach the same key at once: both results are right, the
            # first entry is kept.
            tx.execute(
                f"""INSERT INTO cache_entries ({ENTRY_COLUMNS})
                    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, id, workflow_id, ?, 0 FROM jobs
                    WHERE id = ? ON CONFLICT (key) DO NOTHING""",
                (key.key, key.step, key.name, key.code, key.params, key.parents, key.settings,
                 digest, claim.serializer, kept, now, claim.id),
            )
            if replaced is not None and replaced != digest:
                self._drop_unreferenced_blobs(tx, (replaced,))
            self.release_children(tx, claim.id)
            return True

        return self._run_and_wake(body)

    def cache_entries(self, limit: int) -> list[Row]:
        return self.db.read(
            """SELECT e.key, e.step, e.name, e.workflow_id, e.job_id, e.created_at,
                    e.used_at, e.hits, e.result_digest, e.serializer,
                    COALESCE(b.size, LENGTH(e.result), 0) AS size
                FROM cache_entries e LEFT JOIN result_blobs b ON b.digest = e.result_digest
                ORDER BY COALESCE(e.used_at, e.created_at) DESC, e.key LIMIT ?""",
            (limit,),
        )

    def clear_cache(self, before_timestamp: str | None = None) -> int:
        condition: str = ""
        args: tuple[str, ...] = ()
        if before_timestamp:
            condition, args = " WHERE COALESCE(used_at, created_at) < ?", (before_timestamp,)

        def body(tx: Tx) -> int:
            digests = [row[0] for row in tx.execute(
                f"SELECT DISTINCT result_digest FROM cache_entries{condition}", args)]
            cleared = tx.execute(f"DELETE FROM cache_entries{condition}", args).rowcount
            self._drop_unreferenced_blobs(tx, digests)
            return cleared

        return self.db.run(body)
