"""Tags and limits: at most n jobs carrying a tag run at once, across every worker.

A job's ``gate`` is the set of its tags that have a limit (None for most jobs). Ready
jobs without a gate stay in the claim's index (``idx_jobs_ready_free``); gated ones wait
in an index of their own, by gate, so that a full limit never makes a claim scan past
the jobs it holds back. A claim then compares the head of the free index with the head
of each gate that has room, counting the running jobs of each gate through a small
index of running gated jobs. PostgreSQL claimers lock the limits' rows first, so that
two hosts never both take the last place; SQLite's write lock does the same.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from .sql_base import SQLBase
from .statements import chunks
from .transport import Tx

GATE_SEPARATOR = "\n"
"""Joins a gate's tags (tags cannot contain it)."""
GATED_HEAD = """SELECT priority, created_at, {key} FROM jobs WHERE gate = ?
    AND status = 'pending' AND pending_deps = 0 AND (retry_after IS NULL OR retry_after <= ?)
    ORDER BY priority DESC, created_at LIMIT 1"""

RUNNING_GATES = ("SELECT gate, COUNT(*) FROM jobs WHERE status = 'running' "
                 "AND gate IS NOT NULL GROUP BY gate")
"""Running jobs per gate, through the index of running gated jobs."""


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

    def limits(self) -> dict[str, int]:
        return {row["tag"]: row["max_running"] for row in self.db.read(
            "SELECT tag, max_running FROM tag_limits ORDER BY tag")}

    def running_by_tag(self) -> dict[str, int]:
        rows = self.db.read(RUNNING_GATES.replace("COUNT(*)", "COUNT(*) AS n"))
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
        pattern = "%" + json.dumps(tag).replace("%", "\\%").replace("_", "\\_") + "%"
        changed = [
            (gate_of(json.loads(tags), limited), job_id)
            for job_id, tags in tx.execute(
                "SELECT id, tags FROM jobs WHERE status IN ('pending', 'running') "
                "AND tags LIKE ? ESCAPE '\\'", (pattern,)).fetchall()
        ]
        for chunk in chunks(changed):
            tx.executemany("UPDATE jobs SET gate = ? WHERE id = ?", chunk)
        self.add_gates(tx, (gate for gate, _ in changed))

    @staticmethod
    def limited_tags(tx: Tx) -> set[str]:
        return {row[0] for row in tx.execute("SELECT tag FROM tag_limits")}

    @staticmethod
    def add_gates(tx: Tx, gates: Iterable[str | None]) -> None:
        new = sorted({gate for gate in gates if gate is not None})
        if new:
            tx.executemany("INSERT INTO gates (gate) VALUES (?) ON CONFLICT (gate) DO NOTHING",
                           [(gate,) for gate in new])

    def gated_choice(self, tx: Tx, now: str, free_key: Any) -> Any:
        """The key of the gated job a claim should take instead of the free index's head
        (``free_key``, None if empty): the best head of a gate with room, if it comes
        first by priority then age. None: take the free head (or nothing)."""
        gates = [row[0] for row in tx.execute("SELECT gate FROM gates")]
        if not gates:
            return None
        limits = dict(tx.execute(
            f"SELECT tag, max_running FROM tag_limits ORDER BY tag {self.lock_update}"
        ).fetchall())
        running = running_tags(tx.execute(RUNNING_GATES).fetchall())
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

    def gate_new_jobs(self, tx: Tx, tags: Sequence[Sequence[str]]) -> list[str | None]:
        """The gates of jobs about to be inserted with ``tags`` (their gates recorded)."""
        if not any(tags):
            return [None] * len(tags)
        limited = self.limited_tags(tx)
        gates = [gate_of(job_tags, limited) for job_tags in tags]
        self.add_gates(tx, gates)
        return gates
