"""Tags and limits: at most n jobs carrying a tag run at once, across every worker.

A job's ``gate`` is the set of its tags that have a limit (None for most jobs). Ready
jobs without a gate stay in the claim's index (``idx_jobs_ready_free``); gated ones wait
in an index of their own, by gate, so that a full limit never makes a claim scan past
the jobs it holds back. A claim finds the gates that have ready jobs by skipping through
that index (one seek per gate), counts the running jobs of each gate through a small
index of running gated jobs, and compares the head of the free index with the head of
each gate that has room. A map's ``max_active`` is the limit of a tag its items carry,
``map:<id>``, read from the map's row while it waits for them: nothing to remove later.
PostgreSQL claimers of gated jobs take turns on a transaction lock, so that two hosts
never both take the last place; SQLite's write lock does the same.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from .sql_base import SQLBase
from .statements import chunks, marks
from .transport import Tx

GATE_SEPARATOR = "\n"
"""Joins a gate's tags (tags cannot contain it)."""
READY_GATES = """WITH RECURSIVE ready(gate) AS (
        SELECT (SELECT gate FROM jobs WHERE status = 'pending' AND pending_deps = 0
                AND gate IS NOT NULL ORDER BY gate LIMIT 1)
        UNION ALL
        SELECT (SELECT gate FROM jobs WHERE status = 'pending' AND pending_deps = 0
                AND gate IS NOT NULL AND gate > ready.gate ORDER BY gate LIMIT 1)
        FROM ready WHERE ready.gate IS NOT NULL)
    SELECT gate FROM ready WHERE gate IS NOT NULL"""
"""The distinct gates of ready jobs, one index seek each (none: one seek)."""
RUNNING_GATES = """SELECT gate, COUNT(*) AS n FROM jobs
    WHERE status = 'running' AND gate IS NOT NULL GROUP BY gate"""
"""Running jobs per gate, through the index of running gated jobs."""
GATE_STATE = f"""SELECT 'limit', tag, max_running FROM tag_limits
    UNION ALL SELECT 'running', * FROM ({RUNNING_GATES}) AS running"""
"""The limits and how many jobs of each gate run: what a claim weighs."""
MAP_TAG_PREFIX = "map:"
GATED_HEAD = """SELECT priority, created_at, {key} FROM jobs WHERE gate = ?
    AND status = 'pending' AND pending_deps = 0 AND (retry_after IS NULL OR retry_after <= ?)
    ORDER BY priority DESC, created_at LIMIT 1"""




def gate_of(tags: Iterable[str], limited: Iterable[str]) -> str | None:
    """The gate of a job with ``tags``: its limited tags, sorted and joined (or None)."""
    held = sorted(set(tags) & set(limited))
    return GATE_SEPARATOR.join(held) if held else None


def running_tags(gates: Iterable[tuple[str, int]]) -> Counter[str]:
    """(gate, running jobs) pairs -> running jobs per limited tag."""
    running: Counter[str] = Counter()
    for gate, count in gates:
        for tag in gate.split(GATE_SEPARATOR):
            running[tag] += count
    return running


class SQLLimits(SQLBase):
    """Limits per tag, and the claim's choice among gated jobs."""

    row_key = "id"
    """The column a backend claims a row by (SQLite: ``rowid``)."""
    limits_lock = ""
    """A statement that makes claimers of gated jobs take turns (a server's)."""

    def limits(self) -> dict[str, int]:
        return {row["tag"]: row["max_running"] for row in self.db.read(
            f"""SELECT tag, max_running FROM tag_limits
                UNION ALL SELECT '{MAP_TAG_PREFIX}' || id, map_limit FROM jobs
                WHERE map_limit IS NOT NULL AND map_size IS NOT NULL AND status = 'pending'
                ORDER BY 1""")}

    def running_by_tag(self) -> dict[str, int]:
        rows = self.db.read(RUNNING_GATES)
        return dict(sorted(running_tags((row["gate"], row["n"]) for row in rows).items()))

    def set_limit(self, tag: str, max_running: int | None) -> None:
        def body(tx: Tx) -> None:
            self.write_limit(tx, tag, max_running)
            self.announce(tx)

        self.db.run(body)
        self.wake.bump()  # a raised limit frees waiting jobs

    def write_limit(self, tx: Tx, tag: str, max_running: int | None) -> None:
        """Set (None: remove) the limit of ``tag`` and re-gate its unfinished jobs."""
        if max_running is None:
            tx.execute("DELETE FROM tag_limits WHERE tag = ?", (tag,))
        else:
            tx.execute("INSERT INTO tag_limits (tag, max_running) VALUES (?, ?) "
                       "ON CONFLICT (tag) DO UPDATE SET max_running = excluded.max_running",
                       (tag, max_running))
        limited = self.limited_tags(tx)
        escaped = json.dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        changed = [
            (gate_of(json.loads(tags), limited), job_id)
            for job_id, tags in tx.execute(
                "SELECT id, tags FROM jobs WHERE status IN ('pending', 'running') "
                "AND tags LIKE ? ESCAPE '\\'", (pattern,)).fetchall()
        ]
        for chunk in chunks(changed):
            tx.executemany("UPDATE jobs SET gate = ? WHERE id = ?", chunk)

    @staticmethod
    def limited_tags(tx: Tx) -> set[str]:
        return {row[0] for row in tx.execute("SELECT tag FROM tag_limits")}

    def gated_choice(self, tx: Tx, now: str, free_key: Any) -> Any:
        """The key of the gated job a claim should take instead of the free index's head
        (``free_key``, None if empty): the best head of a gate with room, if it comes
        first by priority then age. None: take the free head (or nothing)."""
        gates = [row[0] for row in tx.execute(READY_GATES).fetchall()]
        if not gates:
            return None
        if self.limits_lock:  # a server: claimers of gated jobs take turns
            tx.execute(self.limits_lock)
        limits: dict[str, float] = {}
        running_gates = []
        for kind, name, count in tx.execute(GATE_STATE).fetchall():
            if kind == "limit":
                limits[name] = count
            else:
                running_gates.append((name, count))
        running = running_tags(running_gates)
        limits.update(self._map_limits(tx, gates))
        best: Sequence[Any] | None = None
        head = GATED_HEAD.format(key=self.row_key) + " " + self.lock_skip
        for gate in gates:
            if any(running[tag] >= limits.get(tag, math.inf)
                   for tag in gate.split(GATE_SEPARATOR)):
                continue
            row = tx.execute(head, (gate, now)).fetchone()
            if row is not None and (best is None or (-row[0], row[1]) < (-best[0], best[1])):
                best = row
        if best is None:
            return None
        if free_key is not None:
            free = tx.execute(f"SELECT priority, created_at FROM jobs WHERE {self.row_key} = ?",
                              (free_key,)).fetchone()
            if (-free[0], free[1]) <= (-best[0], best[1]):
                return None
        return best[2]

    @staticmethod
    def _map_limits(tx: Tx, gates: Iterable[str]) -> dict[str, float]:
        """The limits of the map tags in ``gates``: each map's ``max_active``, from its row."""
        maps = sorted({tag[len(MAP_TAG_PREFIX):] for gate in gates
                       for tag in gate.split(GATE_SEPARATOR) if tag.startswith(MAP_TAG_PREFIX)})
        found: dict[str, float] = {}
        for chunk in chunks(maps):
            found.update((MAP_TAG_PREFIX + job_id, limit) for job_id, limit in tx.execute(
                f"SELECT id, map_limit FROM jobs WHERE id IN ({marks(chunk)})", chunk))
        return found

    def gate_new_jobs(self, tx: Tx, tags: Sequence[Sequence[str]],
                      also_limited: Iterable[str] = ()) -> list[str | None]:
        """The gates of jobs about to be inserted with ``tags``, ``also_limited`` naming
        limited tags beyond the table's (a map's own)."""
        if not any(tags):
            return [None] * len(tags)
        limited = self.limited_tags(tx) | set(also_limited)
        return [gate_of(job_tags, limited) for job_tags in tags]
