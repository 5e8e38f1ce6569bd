"""PostgreSQL schema: the SQLite one's tables and indexes, in a schema of their own.

Versioned in ``gigq_flow_meta``; created or migrated on first use under an advisory
lock, so concurrent first users do not race.
"""

from __future__ import annotations

from typing import Any

from ..clock import now_iso
from ..errors import SchemaVersionError
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

TABLES = (
    """CREATE TABLE IF NOT EXISTS gigq_flow_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        function_name TEXT NOT NULL,
        function_module TEXT NOT NULL,
        params BYTEA,
        priority INTEGER DEFAULT 0,
        dependencies TEXT,
        max_attempts INTEGER DEFAULT 3,
        timeout DOUBLE PRECISION DEFAULT 300,
        description TEXT,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        attempts INTEGER DEFAULT 0,
        result BYTEA,
        error TEXT,
        started_at TEXT,
        completed_at TEXT,
        worker_id TEXT,
        pass_parent_results INTEGER,
        retry_delay DOUBLE PRECISION DEFAULT 0,
        retry_after TEXT,
        workflow_id TEXT,
        pending_deps INTEGER NOT NULL DEFAULT 0,
        execution_id TEXT,
        serializer TEXT NOT NULL DEFAULT 'json',
        seq BIGSERIAL
    )""",
    *(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {name} {declaration}"
      for name, declaration in CACHE_JOB_COLUMNS),
    *cache_tables("BYTEA"),
    """CREATE TABLE IF NOT EXISTS ended_attempts (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        worker_id TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        completed_at TEXT,
        result BYTEA,
        error TEXT,
        seq BIGSERIAL
    )""",
    """CREATE TABLE IF NOT EXISTS job_dependencies (
        job_id TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (job_id, depends_on)
    )""",
    """CREATE TABLE IF NOT EXISTS workflows (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS workers (
        instance TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        concurrency INTEGER NOT NULL,
        lease_timeout DOUBLE PRECISION NOT NULL,
        started_at TEXT NOT NULL,
        last_heartbeat DOUBLE PRECISION NOT NULL,
        stopped_at TEXT,
        reclaimed_at TEXT
    )""",
    *(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} TEXT"
      for table, column in TRACEBACK_COLUMNS),
    OUTPUT_TABLE,
    *(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {name} {declaration}"
      for name, declaration in (CODE_COLUMN, *MAP_COLUMNS, *LIMIT_COLUMNS)),
    code_table("BYTEA"),
    *LIMIT_TABLES,
    *JOB_INDEXES,
    *GATE_INDEXES,
    "CREATE INDEX IF NOT EXISTS idx_ended_attempts_job ON ended_attempts (job_id, started_at)",
    f"CREATE OR REPLACE VIEW job_executions AS {ATTEMPTS_QUERY}",
)

# Version 1 kept a lease per running job, an index of running jobs and every attempt in
# job_executions; its workers were keyed by name. Run before TABLES.
UPGRADE_FROM_1 = (
    "DROP INDEX IF EXISTS idx_jobs_running",
    "ALTER TABLE jobs DROP COLUMN IF EXISTS timeout_at",
    "ALTER TABLE jobs DROP COLUMN IF EXISTS lease_expires_at",
    "UPDATE jobs SET execution_id = NULL WHERE status NOT IN ('running', 'completed', 'failed')",
    "DELETE FROM job_executions e USING jobs j WHERE j.execution_id = e.id",
    "ALTER TABLE workers RENAME TO workers_1",
)
# Version 2 stored ended attempts as job_executions, and listed every attempt in a
# job_attempts view; GigQ's name now lists every attempt. Run before TABLES.
UPGRADE_FROM_2 = (
    "DROP VIEW IF EXISTS job_attempts",
    "ALTER TABLE job_executions RENAME TO ended_attempts",
    "ALTER INDEX IF EXISTS idx_job_executions_job RENAME TO idx_ended_attempts_job",
)
COPY_WORKERS_1 = """INSERT INTO workers (instance, id, host, pid, concurrency, lease_timeout,
        started_at, last_heartbeat, stopped_at)
    SELECT id, id, host, pid, concurrency, lease_timeout, started_at, last_heartbeat,
        COALESCE(stopped_at, ?) FROM workers_1"""


def recorded_version(tx: Any, schema: str) -> int:
    """The schema version recorded in ``schema`` (0 when it has no gigq_flow tables)."""
    if tx.execute("SELECT to_regclass(?)", (f'"{schema}".gigq_flow_meta',)).fetchone()[0] is None:
        return 0
    row = tx.execute(
        f'SELECT value FROM "{schema}".gigq_flow_meta WHERE key = \'schema_version\''
    ).fetchone()
    return int(row[0]) if row else 0


def migrate(tx: Any, schema: str, location: str) -> None:
    """Create the schema and its tables, or check the recorded version (in one transaction).

    A current schema is only read: no DDL, whose locks would queue behind running
    workers' transactions."""
    if recorded_version(tx, schema) == SCHEMA_VERSION:
        return
    tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"gigq_flow:{schema}",))
    tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    tx.execute(f'SET LOCAL search_path TO "{schema}"')
    version = recorded_version(tx, schema)
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"schema {schema!r} of {location} was written by a newer gigq_flow (schema "
            f"{version}, this one reads up to {SCHEMA_VERSION}); upgrade gigq_flow"
        )
    if version == 1:
        for statement in UPGRADE_FROM_1:
            tx.execute(statement)
    if version in (1, 2):
        for statement in UPGRADE_FROM_2:
            tx.execute(statement)
    for statement in TABLES:
        tx.execute(statement)
    if version == 1:
        tx.execute(COPY_WORKERS_1, (now_iso(),))
        tx.execute("DROP TABLE workers_1")
    if version < 2:  # running jobs without a lease get one; from 2 on they have one
        adopt_running_jobs(tx)
    tx.execute(
        "INSERT INTO gigq_flow_meta (key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )
