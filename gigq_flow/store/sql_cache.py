"""Incremental runs in the SQL store: cache entries, results stored once by digest, and
the completions that write and reuse them.

A job of a cached run keeps its result in ``result_blobs`` (``jobs.result`` stays NULL,
``jobs.result_digest`` points at the blob); an entry of ``cache_entries`` maps a step's
key to a blob. Reusing a result references the blob: nothing is copied.
"""

from __future__ import annotations

from .clock import now_iso
from .contract import CacheKey, CacheLookup, ClaimedJob, Row
from .sql_base import SQLBase
from .statements import HELD
from .transport import Tx

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
COMPLETE_FROM_BLOB = """status = 'completed', result = NULL, error = NULL, completed_at = ?,
    updated_at = ?, result_digest = ?, cache_key = ?, cache_note = ?"""
ENTRY_COLUMNS = """key, step, name, code_digest, params_digest, parents_digest, settings,
    result_digest, job_id, workflow_id, created_at, hits"""


class SQLCache(SQLBase):
    """The cache of step results: lookups, reuse, and completions that feed it."""

    def find_cached(self, key: CacheKey) -> CacheLookup:
        step = (key.step, key.name)
        row = self.db.read(LOOKUP, (
            *step, *step, key.code, *step, key.code, key.params,
            *step, key.code, key.params, key.parents, key.key,
        ))[0]
        shared = 0
        for column in ("same_step", "same_code", "same_params", "same_parents"):
            if not row[column]:
                break
            shared += 1
        return CacheLookup(row["result_digest"], row["job_id"], row["workflow_id"], shared)

    def reuse(self, claim: ClaimedJob, key: CacheKey, note: str) -> bool:
        def body(tx: Tx) -> bool:
            entry = tx.execute(
                "SELECT result_digest, job_id FROM cache_entries WHERE key = ?", (key.key,)
            ).fetchone()
            if entry is None:  # cleared since the lookup: the job runs
                return False
            now = now_iso()
            if tx.execute(
                f"UPDATE jobs SET {COMPLETE_FROM_BLOB}, cached_from = ? WHERE {HELD}",
                (now, now, entry[0], key.key, note, entry[1], claim.id, claim.execution_id),
            ).rowcount != 1:
                return False
            tx.execute("UPDATE cache_entries SET hits = hits + 1, used_at = ? WHERE key = ?",
                       (now, key.key))
            self.release_children(tx, claim.id)
            return True

        return self._run_and_wake(body)

    def complete_cached(self, claim: ClaimedJob, result: str | bytes | None, digest: str,
                        key: CacheKey, note: str, *, refresh: bool) -> bool:
        stored = self.blob(result)
        size = 0 if result is None else len(result)

        def body(tx: Tx) -> bool:
            now = now_iso()
            if tx.execute(
                f"UPDATE jobs SET {COMPLETE_FROM_BLOB} WHERE {HELD}",
                (now, now, digest, key.key, note, claim.id, claim.execution_id),
            ).rowcount != 1:
                return False
            tx.execute(
                "INSERT INTO result_blobs (digest, serializer, data, size, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                (digest, claim.serializer, stored, size, now),
            )
            replaced = None
            if refresh:
                old = tx.execute("SELECT result_digest FROM cache_entries WHERE key = ?",
                                 (key.key,)).fetchone()
                replaced = old[0] if old and old[0] != digest else None
                tx.execute("DELETE FROM cache_entries WHERE key = ?", (key.key,))
            # Two workers may reach the same key at once: both results are right, the
            # first entry is kept.
            tx.execute(
                f"""INSERT INTO cache_entries ({ENTRY_COLUMNS})
                    SELECT ?, ?, ?, ?, ?, ?, ?, ?, id, workflow_id, ?, 0 FROM jobs WHERE id = ?
                    ON CONFLICT (key) DO NOTHING""",
                (key.key, key.step, key.name, key.code, key.params, key.parents, key.settings,
                 digest, now, claim.id),
            )
            if replaced is not None:
                self._drop_unreferenced_blobs(tx, (replaced,))
            self.release_children(tx, claim.id)
            return True

        return self._run_and_wake(body)

    def cache_entries(self, limit: int) -> list[Row]:
        return self.db.read(
            """SELECT e.key, e.step, e.name, e.workflow_id, e.job_id, e.created_at,
                    e.used_at, e.hits, e.result_digest, b.size, b.serializer
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
