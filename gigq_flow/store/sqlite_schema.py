"""SQLite schema: creation, and migration of new, empty, GigQ 0.5 and older files in place.

The ``jobs`` table keeps every GigQ 0.5 column and ``job_executions`` (a view) lists
every attempt with GigQ's columns, so GigQ files open in place and GigQ-style SQL still
reads them. A job row holds its latest attempt; ``ended_attempts`` stores the others.
The version is ``PRAGMA user_version``: 0 means a new file or a GigQ file.
"""

from __future__ import annotations

import json
import sqlite3

from ..clock import now_iso
from ..errors import DatabaseError, SchemaVersionError
from .schema import (
    ATTEMPTS_QUERY,
    CACHE_JOB_COLUMNS,
    CODE_COLUMN,
    GATE_INDEXES,
    JOB_INDEXES,
    LIMIT_COLUMNS,
    LIMIT_TABLES,
    MAP_COLUMNS,
    OUTPUT_TABLE,
    TRACEBACK_COLUMNS,
    adopt_running_jobs,
    cache_tables,
    code_table,
)

SCHEMA_VERSION = 6

GIGQ_JOBS_TABLE = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    function_name TEXT NOT NULL,
    function_module TEXT NOT NULL,
    params TEXT,
    priority INTEGER DEFAULT 0,
    dependencies TEXT,
    max_attempts INTEGER DEFAULT 3,
    timeout INTEGER DEFAULT 300,
    description TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    attempts INTEGER DEFAULT 0,
    result TEXT,
    error TEXT,
    started_at TEXT,
    completed_at TEXT,
    worker_id TEXT,
    pass_parent_results INTEGER,
    retry_delay INTEGER DEFAULT 0,
    retry_after TEXT
)"""

# New files keep a job's ended attempts in one b-tree keyed by (job_id, id): writing one
# costs one page instead of three (GigQ's table plus two indexes).
ENDED_ATTEMPTS_TABLE = """
CREATE TABLE ended_attempts (
    id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    result TEXT,
    error TEXT,
    PRIMARY KEY (job_id, id)
) WITHOUT ROWID"""

# Columns GigQ added after its first release, then ours; (name, declaration).
ADDED_JOB_COLUMNS = (
    ("pass_parent_results", "INTEGER"),
    ("retry_delay", "INTEGER DEFAULT 0"),
    ("retry_after", "TEXT"),
    ("workflow_id", "TEXT"),
    ("pending_deps", "INTEGER NOT NULL DEFAULT 0"),
    ("execution_id", "TEXT"),
    ("serializer", "TEXT NOT NULL DEFAULT 'json'"),
    *CACHE_JOB_COLUMNS,
)
CACHE_TABLES = cache_tables("BLOB", " WITHOUT ROWID")

# Worker processes, one row per start; ``instance`` prefixes the ids of their attempts.
WORKERS_TABLE = """
CREATE TABLE workers (
    instance TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    lease_timeout REAL NOT NULL,
    started_at TEXT NOT NULL,
    last_heartbeat REAL NOT NULL,
    stopped_at TEXT,
    reclaimed_at TEXT
)"""

OUR_TABLES = (
    """CREATE TABLE IF NOT EXISTS job_dependencies (
        job_id TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (job_id, depends_on)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS workflows (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def table_names(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def check_version(conn: sqlite3.Connection, path: str) -> int:
    """Return the file's schema version; refuse files we cannot safely read."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} was written by a newer gigq_flow (schema {version}, this one reads "
            f"up to {SCHEMA_VERSION}); upgrade gigq_flow to open it"
        )
    tables = table_names(conn)
    if version == 0 and tables and "jobs" not in tables:
        raise DatabaseError(
            f"{path} is a SQLite database but not a job queue (it has tables "
            f"{', '.join(sorted(tables))} and no 'jobs' table); use a new file for the queue"
        )
    return version


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file to SCHEMA_VERSION in one transaction (no-op when current)."""
    if check_version(conn, path) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = check_version(conn, path)  # another process may have won
        if version == 0:
            _create(conn, path)
        if version == 1:
            _upgrade_from_1(conn)
        if version in (1, 2):
            _upgrade_from_2(conn)
        if version in (1, 2, 3):
            _upgrade_from_3(conn)
        _upgrade_to_5(conn)
        _upgrade_to_6(conn)
        conn.execute("DROP VIEW IF EXISTS job_executions")
        conn.execute(f"CREATE VIEW job_executions AS {ATTEMPTS_QUERY}")
        if version < 2:  # running jobs without a lease get one; from 2 on they have one
            adopt_running_jobs(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _create(conn: sqlite3.Connection, path: str) -> None:
    """A new file, or a GigQ file: GigQ's tables (kept when present), then ours."""
    had_executions = "job_executions" in table_names(conn)
    conn.execute(GIGQ_JOBS_TABLE)
    if had_executions:  # a GigQ file: its attempts are kept, under the stored table's name
        conn.execute("ALTER TABLE job_executions RENAME TO ended_attempts")
        conn.execute("CREATE INDEX IF NOT EXISTS idx_ended_attempts_job "
                     "ON ended_attempts (job_id, started_at)")
    else:
        conn.execute(ENDED_ATTEMPTS_TABLE)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    for name, declaration in ADDED_JOB_COLUMNS:
        if name not in columns:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
    for statement in (*OUR_TABLES, WORKERS_TABLE, *JOB_INDEXES, *CACHE_TABLES):
        conn.execute(statement)
    _backfill_dependencies(conn, path)


def _upgrade_from_1(conn: sqlite3.Connection) -> None:
    """Version 1 kept every attempt in ``job_executions``, a lease per running job and an
    index of running jobs; now a job row holds its latest attempt and workers hold leases."""
    conn.execute("DROP INDEX IF EXISTS idx_jobs_running")
    conn.execute("ALTER TABLE jobs DROP COLUMN timeout_at")
    conn.execute("ALTER TABLE jobs DROP COLUMN lease_expires_at")
    conn.execute("UPDATE jobs SET execution_id = NULL "
                 "WHERE status NOT IN ('running', 'completed', 'failed')")
    conn.execute("DELETE FROM job_executions WHERE id IN "
                 "(SELECT execution_id FROM jobs WHERE execution_id IS NOT NULL)")
    conn.execute("ALTER TABLE workers RENAME TO workers_1")
    conn.execute(WORKERS_TABLE)
    conn.execute(
        """INSERT INTO workers (instance, id, host, pid, concurrency, lease_timeout, started_at,
               last_heartbeat, stopped_at)
           SELECT id, id, host, pid, concurrency, lease_timeout, started_at, last_heartbeat,
               COALESCE(stopped_at, ?) FROM workers_1""",
        (now_iso(),),
    )
    conn.execute("DROP TABLE workers_1")
    for statement in JOB_INDEXES:
        conn.execute(statement)


def _upgrade_from_2(conn: sqlite3.Connection) -> None:
    """Version 2 stored ended attempts as ``job_executions`` and listed every attempt in a
    ``job_attempts`` view; now GigQ's name lists every attempt (a view ``migrate``
    creates), and the table is renamed."""
    conn.execute("DROP VIEW IF EXISTS job_attempts")
    conn.execute("ALTER TABLE job_executions RENAME TO ended_attempts")
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'idx_job_executions_job'").fetchone():
        conn.execute("DROP INDEX idx_job_executions_job")  # a GigQ file's: same index, new name
        conn.execute("CREATE INDEX idx_ended_attempts_job ON ended_attempts (job_id, started_at)")


def _upgrade_to_5(conn: sqlite3.Connection) -> None:
    """Version 5 keeps each attempt's output and traceback (new files get them here too)."""
    for table, column in TRACEBACK_COLUMNS:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
    conn.execute(OUTPUT_TABLE + " WITHOUT ROWID")


def _upgrade_to_6(conn: sqlite3.Connection) -> None:
    """Version 6 stores the code of steps shipped by value, maps' columns, tags and
    limits (new files get them here too)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    for name, declaration in (CODE_COLUMN, *MAP_COLUMNS, *LIMIT_COLUMNS):
        if name not in columns:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
    for statement in (code_table("BLOB"), *LIMIT_TABLES, *GATE_INDEXES):
        conn.execute(statement)


def _upgrade_from_3(conn: sqlite3.Connection) -> None:
    """Version 4 adds incremental runs: the jobs' cache columns and the cache's tables."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    for name, declaration in CACHE_JOB_COLUMNS:
        if name not in columns:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
    for statement in CACHE_TABLES:
        conn.execute(statement)


def _backfill_dependencies(conn: sqlite3.Connection, path: str) -> None:
    """Fill the edge table and the counters from GigQ's JSON ``dependencies`` column.

    As in GigQ, a dependency on a job that no longer exists counts as satisfied.
    """
    rows = conn.execute(
        "SELECT id, dependencies FROM jobs WHERE dependencies IS NOT NULL "
        "AND dependencies NOT IN ('', '[]', 'null')"
    ).fetchall()
    for job_id, raw in rows:
        try:
            parents = json.loads(raw)
            if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
                raise ValueError("expected a JSON list of job id strings")
            parents = list(dict.fromkeys(parents))
        except (ValueError, TypeError) as exc:
            raise DatabaseError(
                f"{path}: job {job_id} has malformed dependencies {raw!r} ({exc}); "
                "fix the row (a JSON list of job ids) and open the file again"
            ) from exc
        conn.executemany(
            "INSERT OR IGNORE INTO job_dependencies (job_id, depends_on, position) "
            "VALUES (?, ?, ?)",
            [(job_id, parent, i) for i, parent in enumerate(parents)],
        )
    conn.execute(
        """UPDATE jobs SET pending_deps = (
               SELECT COUNT(*) FROM job_dependencies d JOIN jobs p ON p.id = d.depends_on
               WHERE d.job_id = jobs.id AND p.status != 'completed')
           WHERE id IN (SELECT job_id FROM job_dependencies)"""
    )
