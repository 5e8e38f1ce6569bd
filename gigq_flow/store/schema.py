"""Schema parts both backends create, and the migration step both run.

Each backend's own module (:mod:`.sqlite_schema`, :mod:`.postgres_schema`) holds its
tables, its version record and its upgrade steps.
"""

from __future__ import annotations

import time
from datetime import datetime

from ..job import DEFAULT_TIMEOUT
from .clock import now_iso
from .contract import new_instance
from .transport import Tx

ADOPTED_WORKER = "worker before migration"
"""The stand-in worker that holds the running jobs of a migrated file."""

#: The indexes both backends create: the claim reads the head of ``idx_jobs_ready``, so
#: its cost does not depend on how many jobs wait; completions find children through
#: ``idx_job_dependencies_parent``; the search for lost workers reads
#: ``idx_workers_live``. Running jobs have no index: a claim and a completion then each
#: write one page less, and running jobs are found through their worker.
JOB_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_job_dependencies_parent ON job_dependencies (depends_on)",
    """CREATE INDEX IF NOT EXISTS idx_jobs_ready ON jobs (priority DESC, created_at)
        WHERE status = 'pending' AND pending_deps = 0""",
    "CREATE INDEX IF NOT EXISTS idx_jobs_created ON jobs (created_at)",
    "CREATE INDEX IF NOT EXISTS idx_jobs_workflow ON jobs (workflow_id)",
    """CREATE INDEX IF NOT EXISTS idx_workers_live ON workers (last_heartbeat)
        WHERE stopped_at IS NULL AND reclaimed_at IS NULL""",
)

#: The ``job_executions`` view (GigQ's name and columns, plus ``is_current``): every
#: attempt at every job, the ended ones that ``ended_attempts`` stores and the one a job
#: row holds (its latest, while it runs and once it completed or failed for good).
ATTEMPTS_QUERY = """
    SELECT id, job_id, worker_id, status, started_at, completed_at, result, error,
        0 AS is_current
    FROM ended_attempts
    UNION ALL
    SELECT execution_id, id, worker_id, status, started_at, completed_at, result, error, 1
    FROM jobs WHERE execution_id IS NOT NULL"""


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
