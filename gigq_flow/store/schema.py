"""Schema parts both backends create, and the migration step both run.

Each backend's own module (:mod:`.sqlite_schema`, :mod:`.postgres_schema`) holds its
tables, its version record and its upgrade steps.
"""

from __future__ import annotations

import time
from datetime import datetime

from ..clock import now_iso
from ..job import DEFAULT_TIMEOUT
from .contract import new_instance
from .statements import job_result
from .transport import Tx

ADOPTED_WORKER = "worker before migration"
"""The stand-in worker that holds the running jobs of a migrated file."""

#: The indexes both backends create (the claim's are GATE_INDEXES): completions find
#: children through ``idx_job_dependencies_parent``; the search for lost workers reads
#: ``idx_workers_live``; running jobs are found through their worker.
JOB_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_job_dependencies_parent ON job_dependencies (depends_on)",
    "CREATE INDEX IF NOT EXISTS idx_jobs_created ON jobs (created_at)",
    "CREATE INDEX IF NOT EXISTS idx_jobs_workflow ON jobs (workflow_id)",
    """CREATE INDEX IF NOT EXISTS idx_workers_live ON workers (last_heartbeat)
        WHERE stopped_at IS NULL AND reclaimed_at IS NULL""",
)

#: Columns of ``jobs`` for incremental runs (schema 4), as (name, declaration):
#: ``cache`` is how the job's run uses the cache (NULL: off, ``use``, ``recompute``,
#: ``never`` for a step that opted out); a job of a cached run records the digest of its
#: result (a large one is in ``result_blobs``, not in ``result``); ``cache_note`` says
#: why it ran or was reused, and ``cached_from`` names the job whose result it reused.
CACHE_JOB_COLUMNS = (
    ("cache", "TEXT"),
    ("cache_version", "TEXT"),
    ("result_digest", "TEXT"),
    ("cache_note", "TEXT"),
    ("cached_from", "TEXT"),
)


def cache_tables(blob: str, entries_suffix: str = "") -> tuple[str, ...]:
    """The tables of incremental runs, ``blob`` being the backend's type for payloads and
    ``entries_suffix`` what ends the entries' table (SQLite: WITHOUT ROWID, one b-tree).

    An entry maps a step's key to a result: kept in the entry when small, else stored
    once by its digest in ``result_blobs``, whichever jobs and entries reference it. The
    primary key is the key's parts (the step, the digests of its code, params and
    parents, the settings), in that order: a hit is one lookup, and its prefixes tell a
    miss what changed, in the same b-tree. ``key``, the digest of the parts, names an
    entry to people. No index leads to ``result_digest``: only clearing looks for it,
    with one scan.
    """
    return (
        f"""CREATE TABLE IF NOT EXISTS result_blobs (
            digest TEXT PRIMARY KEY,
            serializer TEXT NOT NULL,
            data {blob},
            size INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS cache_entries (
            key TEXT NOT NULL,
            step TEXT NOT NULL,
            name TEXT NOT NULL,
            code_digest TEXT NOT NULL,
            params_digest TEXT NOT NULL,
            parents_digest TEXT NOT NULL,
            settings TEXT NOT NULL,
            result_digest TEXT NOT NULL,
            serializer TEXT NOT NULL,
            result {blob},
            job_id TEXT NOT NULL,
            workflow_id TEXT,
            created_at TEXT NOT NULL,
            used_at TEXT NOT NULL,
            PRIMARY KEY (step, name, code_digest, params_digest, parents_digest, settings)
        ){entries_suffix}""",
    )

#: The ``job_executions`` view (GigQ's name and columns, plus ``is_current``): every
#: attempt at every job, the ended ones that ``ended_attempts`` stores and the one a job
#: row holds (its latest, while it runs and once it completed or failed for good), with
#: the result of a cached run's job read from ``result_blobs``.
ATTEMPTS_QUERY = f"""
    SELECT id, job_id, worker_id, status, started_at, completed_at, result, error,
        0 AS is_current, traceback
    FROM ended_attempts
    UNION ALL
    SELECT execution_id, id, worker_id, status, started_at, completed_at,
        {job_result("jobs")}, error, 1, traceback
    FROM jobs WHERE execution_id IS NOT NULL"""

#: What schema 5 adds for step output: the traceback of a failed attempt (on the job row
#: for its latest attempt, on ``ended_attempts`` for the others), as (table, column).
TRACEBACK_COLUMNS = (("jobs", "traceback"), ("ended_attempts", "traceback"))
#: What each attempt printed and logged, in the chunks its worker stored while it ran.
OUTPUT_TABLE = """CREATE TABLE IF NOT EXISTS attempt_output (
    job_id TEXT NOT NULL,
    attempt_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, attempt_id, seq)
)"""


#: What schema 6 adds for steps shipped by value (functions defined in ``__main__``, a
#: notebook's cells or a closure): each job names its function's code by digest, and the
#: code is stored once, as long as a job references it.
CODE_COLUMN = ("code_digest", "TEXT")
#: Schema 6's columns of mapped steps (``Workflow.map``): a map's row names the parameter
#: its items receive and, once expanded, how many items it has; an item's row names its
#: map and its place in the list.
MAP_COLUMNS = (
    ("map_param", "TEXT"),
    ("map_size", "INTEGER"),
    ("map_of", "TEXT"),
    ("map_index", "INTEGER"),
    ("map_limit", "INTEGER"),
)
#: Schema 6's tags and limits: a job's tags (a JSON list, NULL for none) and its gate,
#: the tags of it that have a limit (see :mod:`.sql_limits`).
LIMIT_COLUMNS = (("tags", "TEXT"), ("gate", "TEXT"))
LIMIT_TABLES = (
    """CREATE TABLE IF NOT EXISTS tag_limits (
        tag TEXT PRIMARY KEY,
        max_running INTEGER NOT NULL
    )""",
)
#: The claim's indexes (schema 6; before, ``idx_jobs_ready`` held every ready job): it
#: reads the head of ``idx_jobs_ready_free``, so its cost does not depend on how many
#: jobs wait, and the head of each gate with room in ``idx_jobs_ready_gated``; running
#: gated jobs are counted through ``idx_jobs_running_gated`` (no other running job is
#: indexed: a claim and a completion then each write one page less).
GATE_INDEXES = (
    "DROP INDEX IF EXISTS idx_jobs_ready",
    """CREATE INDEX IF NOT EXISTS idx_jobs_ready_free ON jobs (priority DESC, created_at)
        WHERE status = 'pending' AND pending_deps = 0 AND gate IS NULL""",
    """CREATE INDEX IF NOT EXISTS idx_jobs_ready_gated ON jobs (gate, priority DESC, created_at)
        WHERE status = 'pending' AND pending_deps = 0 AND gate IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS idx_jobs_running_gated ON jobs (gate)
        WHERE status = 'running' AND gate IS NOT NULL""",
)


def code_table(blob: str) -> str:
    """The table of shipped functions, ``blob`` being the backend's type for payloads."""
    return f"""CREATE TABLE IF NOT EXISTS step_code (
        digest TEXT PRIMARY KEY,
        data {blob} NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL
    )"""


def adopt_running_jobs(tx: Tx) -> None:
    """Jobs an older worker left running get a stand-in worker whose lease ends when the
    last of their timeouts does: then any worker reclaims them as lost."""
    rows = tx.execute(
        "SELECT id, started_at, timeout FROM jobs WHERE status = 'running'").fetchall()
    if not rows:
        return
    deadlines = []
    for _, started_at, timeout in rows:
        try:
            started = datetime.fromisoformat(started_at).timestamp()
        except (TypeError, ValueError):
            started = time.time()
        deadlines.append(started + (timeout or DEFAULT_TIMEOUT))
    instance = new_instance()
    tx.execute(
        "INSERT INTO workers (instance, id, host, pid, concurrency, lease_timeout, started_at, "
        "last_heartbeat) VALUES (?, ?, '', 0, 0, 0, ?, ?)",
        (instance, ADOPTED_WORKER, now_iso(), max(deadlines)),
    )
    for n, (job_id, _, _) in enumerate(rows):
        tx.execute("DELETE FROM ended_attempts WHERE job_id = ? AND status = 'running'",
                   (job_id,))
        tx.execute("UPDATE jobs SET execution_id = ? WHERE id = ?", (f"{instance}-{n}", job_id))
