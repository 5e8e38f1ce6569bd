"""Queues written by an earlier gigq_flow (schemas 1 to 5) are upgraded in place and run on.

Schema 1 kept every attempt in ``job_executions`` (the latest one also in the job row),
a lease per running job and an index of running jobs; workers were keyed by name.
Schema 2 stored only ended attempts in a ``job_executions`` table and listed every
attempt in a ``job_attempts`` view; schema 3 gives GigQ's name to the list of every
attempt and stores the ended ones as ``ended_attempts``; schema 4 adds incremental
runs, schema 5 each attempt's output and schema 6 the code of steps shipped by value.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from support import jobs
from support.db import claim_as, sql
from support.helpers import drain
from support.workflows import finish

from gigq_flow import Job, JobQueue, Worker, Workflow
from gigq_flow.errors import SchemaVersionError
from gigq_flow.store.sqlite_schema import SCHEMA_VERSION

SCHEMA_1 = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, function_name TEXT NOT NULL,
    function_module TEXT NOT NULL, params TEXT, priority INTEGER DEFAULT 0, dependencies TEXT,
    max_attempts INTEGER DEFAULT 3, timeout INTEGER DEFAULT 300, description TEXT,
    status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    attempts INTEGER DEFAULT 0, result TEXT, error TEXT, started_at TEXT, completed_at TEXT,
    worker_id TEXT, pass_parent_results INTEGER, retry_delay INTEGER DEFAULT 0,
    retry_after TEXT, workflow_id TEXT, pending_deps INTEGER NOT NULL DEFAULT 0,
    execution_id TEXT, timeout_at REAL, lease_expires_at REAL,
    serializer TEXT NOT NULL DEFAULT 'json'
);
CREATE TABLE job_executions (
    id TEXT NOT NULL, job_id TEXT NOT NULL, worker_id TEXT NOT NULL, status TEXT NOT NULL,
    started_at TEXT NOT NULL, completed_at TEXT, result TEXT, error TEXT,
    PRIMARY KEY (job_id, id)
) WITHOUT ROWID;
CREATE TABLE job_dependencies (
    job_id TEXT NOT NULL, depends_on TEXT NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
CREATE TABLE workflows (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE workers (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, concurrency INTEGER NOT NULL,
    lease_timeout REAL NOT NULL, started_at TEXT NOT NULL, last_heartbeat REAL NOT NULL,
    stopped_at TEXT
);
CREATE INDEX idx_job_dependencies_parent ON job_dependencies (depends_on);
CREATE INDEX idx_jobs_ready ON jobs (priority DESC, created_at)
    WHERE status = 'pending' AND pending_deps = 0;
CREATE INDEX idx_jobs_running ON jobs (worker_id) WHERE status = 'running';
CREATE INDEX idx_jobs_created ON jobs (created_at);
CREATE INDEX idx_jobs_workflow ON jobs (workflow_id);
PRAGMA user_version = 1;
"""


def insert_job(conn, job_id, status, *, attempts, execution_id=None, started=None,
               completed=None, result=None, error=None, worker=None, timeout=300, order=0):
    created = (datetime.now() - timedelta(minutes=20) + timedelta(seconds=order)).isoformat()
    conn.execute(
        "INSERT INTO jobs (id, name, function_name, function_module, params, dependencies, "
        "timeout, description, status, created_at, updated_at, attempts, result, error, "
        "started_at, completed_at, worker_id, execution_id) "
        "VALUES (?, ?, 'identity', 'support.jobs', ?, '[]', ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (job_id, job_id, json.dumps({"value": job_id}), timeout, status, created, created,
         attempts, result, error, started, completed, worker, execution_id),
    )


def insert_execution(conn, execution_id, job_id, status, started, *, completed=None,
                     result=None, error=None, worker="old-worker"):
    conn.execute(
        "INSERT INTO job_executions (id, job_id, worker_id, status, started_at, completed_at, "
        "result, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (execution_id, job_id, worker, status, started, completed, result, error),
    )


@pytest.fixture
def schema_1_file(tmp_path):
    """Four jobs as schema 1 left them: one completed, one failed once and waiting for its
    retry, one failed for good, and one still running under a worker that has gone."""
    path = tmp_path / "v1.db"
    long_ago = (datetime.now() - timedelta(minutes=10)).isoformat()
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_1)
    insert_job(conn, "done", "completed", attempts=1, execution_id="e-done", started=long_ago,
               completed=long_ago, result='"done"', worker="old-worker", order=0)
    insert_execution(conn, "e-done", "done", "completed", long_ago, completed=long_ago,
                     result='"done"')
    insert_job(conn, "retrying", "pending", attempts=1, execution_id="e-retry",
               error="RuntimeError: once", order=1)
    insert_execution(conn, "e-retry", "retrying", "failed", long_ago, completed=long_ago,
                     error="RuntimeError: once")
    insert_job(conn, "broken", "failed", attempts=3, execution_id="e-broken", started=long_ago,
               completed=long_ago, error="RuntimeError: always", worker="old-worker", order=2)
    insert_execution(conn, "e-broken", "broken", "failed", long_ago, completed=long_ago,
                     error="RuntimeError: always")
    insert_job(conn, "stuck", "running", attempts=1, execution_id="e-stuck", started=long_ago,
               worker="old-worker", timeout=1, order=3)
    insert_execution(conn, "e-stuck", "stuck", "running", long_ago)
    conn.execute("INSERT INTO workers VALUES ('old-worker', 'host', 1, 1, 30, ?, 0, NULL)",
                 (long_ago,))
    conn.commit()
    conn.close()
    return path


def attempts(queue: JobQueue, job_id: str) -> list[tuple[str, str]]:
    return [(e["id"], e["status"]) for e in queue.get_status(job_id)["executions"]]


def test_each_attempt_is_listed_once_after_the_upgrade(schema_1_file):
    queue = JobQueue(schema_1_file)
    assert sql(schema_1_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert attempts(queue, "done") == [("e-done", "completed")]
    assert attempts(queue, "retrying") == [("e-retry", "failed")]
    assert attempts(queue, "broken") == [("e-broken", "failed")]
    assert queue.get_status("retrying")["execution_id"] is None  # no attempt is running
    [(stuck_id, stuck_status)] = attempts(queue, "stuck")
    assert stuck_status == "running"  # handed to a stand-in worker until its timeout
    columns = {row[1] for row in sql(schema_1_file, "PRAGMA table_info(jobs)")}
    assert not {"timeout_at", "lease_expires_at"} & columns
    indexes = {row[0] for row in sql(schema_1_file, "SELECT name FROM sqlite_master "
                                                    "WHERE type = 'index'")}
    assert "idx_jobs_running" not in indexes
    workers = {w["id"]: w for w in queue.list_workers()}
    assert workers["old-worker"]["state"] == "stopped"


def test_upgraded_file_runs_its_jobs_and_reclaims_the_stuck_one(schema_1_file):
    queue = JobQueue(schema_1_file)
    assert drain(Worker(schema_1_file)) == 2  # the retry, and the reclaimed running job
    assert queue.get_result("retrying") == "retrying"
    stuck = queue.get_status("stuck")
    assert (stuck["status"], stuck["result"], stuck["attempts"]) == ("completed", "stuck", 2)
    assert [e["status"] for e in stuck["executions"]] == ["lost", "completed"]
    assert queue.requeue_job("broken")  # its failed attempt is kept as history
    assert drain(Worker(schema_1_file)) == 1
    assert [e["status"] for e in queue.get_status("broken")["executions"]] == [
        "failed", "completed"]


def test_a_file_of_a_newer_schema_is_refused_untouched(schema_1_file):
    sql(schema_1_file, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = schema_1_file.read_bytes()
    with pytest.raises(SchemaVersionError, match="newer gigq_flow"):
        JobQueue(schema_1_file)
    assert schema_1_file.read_bytes() == before


def as_schema_2(path) -> None:
    """Put a schema 3 file back in schema 2's layout."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        DROP VIEW job_executions;
        ALTER TABLE ended_attempts RENAME TO job_executions;
        CREATE VIEW job_attempts AS
            SELECT id, job_id, worker_id, status, started_at, completed_at, result, error,
                0 AS is_current FROM job_executions
            UNION ALL
            SELECT execution_id, id, worker_id, status, started_at, completed_at, result,
                error, 1 FROM jobs WHERE execution_id IS NOT NULL;
        PRAGMA user_version = 2;
    """)
    conn.close()


def test_a_schema_2_file_lists_every_attempt_under_gigqs_name(tmp_path):
    path = tmp_path / "two.db"
    queue = JobQueue(path)
    retried = queue.submit(Job("retried", jobs.add, params={"a": 1, "b": 2}, max_attempts=2))
    store, instance, first = claim_as(path, "w-old")
    assert store.fail(first, "RuntimeError: once", retry=True)
    store, instance, running = claim_as(path, "w-live")  # a live worker holds attempt 2
    queue.close()
    store.close()
    as_schema_2(path)

    upgraded = JobQueue(path)
    assert sql(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    views = {row[0] for row in sql(path, "SELECT name FROM sqlite_master WHERE type = 'view'")}
    assert views == {"job_executions"}
    assert sql(path, "SELECT id, status FROM job_executions ORDER BY is_current") == [
        (first.execution_id, "failed"), (running.execution_id, "running")]
    assert sql(path, "SELECT id FROM ended_attempts") == [(first.execution_id,)]
    # The live worker's attempt keeps its id (no stand-in adopts it): its result lands.
    assert upgraded.get_status(retried)["execution_id"] == running.execution_id
    assert store.complete(running, "3")
    assert upgraded.get_result(retried) == 3


def rewrite_postgres_schema(postgres_url: str, *statements: str) -> tuple[str, str]:
    """Run ``statements`` in the queue's schema with no pool of ours open; returns the
    server's conninfo and the schema."""
    import psycopg

    from gigq_flow.store.postgres_connection import close_pools, split_url

    close_pools(postgres_url)
    conninfo, schema, _ = split_url(postgres_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for statement in statements:
            conn.execute(statement)
    return conninfo, schema


def test_a_schema_2_postgres_queue_is_upgraded_in_place(postgres_url, make_worker):
    import psycopg

    queue = JobQueue(postgres_url)
    done = queue.submit(Job("done", jobs.add, params={"a": 1, "b": 1}))
    assert drain(make_worker(postgres_url)) == 1
    queue.close()
    conninfo, schema = rewrite_postgres_schema(
        postgres_url,
        "DROP VIEW job_executions",
        "ALTER TABLE ended_attempts RENAME TO job_executions",
        "ALTER INDEX idx_ended_attempts_job RENAME TO idx_job_executions_job",
        "CREATE VIEW job_attempts AS SELECT id, job_id FROM job_executions",
        "UPDATE gigq_flow_meta SET value = '2' WHERE key = 'schema_version'",
    )

    upgraded = JobQueue(postgres_url)
    assert [e["status"] for e in upgraded.get_status(done)["executions"]] == ["completed"]
    with psycopg.connect(conninfo) as conn:
        views = {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = %s",
            (schema,))}
        version = conn.execute(
            f'SELECT value FROM "{schema}".gigq_flow_meta WHERE key = %s',
            ("schema_version",)).fetchone()[0]
    assert views == {"job_executions"} and version == str(SCHEMA_VERSION)


CACHE_COLUMNS = ("cache", "cache_version", "result_digest", "cache_note",
                 "cached_from")
SCHEMA_3_VIEW = """CREATE VIEW job_executions AS
    SELECT id, job_id, worker_id, status, started_at, completed_at, result, error,
        0 AS is_current FROM ended_attempts
    UNION ALL
    SELECT execution_id, id, worker_id, status, started_at, completed_at, result, error, 1
    FROM jobs WHERE execution_id IS NOT NULL"""


def runs_cached_twice(queue: JobQueue) -> tuple[dict, dict]:
    """Run a one-step workflow with cache=True twice; the explanations of both runs."""
    runs = []
    for _ in range(2):
        wf = Workflow("upgraded")
        wf.add_task(jobs.add, params={"a": 2, "b": 3}, name="sum")
        runs.append(finish(queue, wf.submit(queue, cache=True)))
    assert runs[1].results() == {"sum": 5}
    return runs[0].explain(), runs[1].explain()


def test_a_schema_3_file_gains_incremental_runs_in_place(tmp_path):
    path = tmp_path / "three.db"
    queue = JobQueue(path)
    done = queue.submit(Job("done", jobs.add, params={"a": 1, "b": 1}))
    assert drain(Worker(path)) == 1
    queue.close()
    conn = sqlite3.connect(path)
    conn.executescript(f"""
        DROP VIEW job_executions;
        DROP TABLE cache_entries;
        DROP TABLE result_blobs;
        {"".join(f"ALTER TABLE jobs DROP COLUMN {c};" for c in CACHE_COLUMNS)}
        {SCHEMA_3_VIEW};
        PRAGMA user_version = 3;
    """)
    conn.close()

    upgraded = JobQueue(path)
    assert sql(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert upgraded.get_result(done) == 2
    assert upgraded.get_status(done)["cached_from"] is None
    first, second = runs_cached_twice(upgraded)
    assert first == {"sum": "ran: no earlier result"}
    assert second["sum"].startswith("cached")


def test_a_schema_3_postgres_queue_gains_incremental_runs_in_place(postgres_url):
    JobQueue(postgres_url).close()
    rewrite_postgres_schema(
        postgres_url,
        "DROP VIEW job_executions",
        "DROP TABLE cache_entries",
        "DROP TABLE result_blobs",
        *(f"ALTER TABLE jobs DROP COLUMN {column}" for column in CACHE_COLUMNS),
        SCHEMA_3_VIEW,
        "UPDATE gigq_flow_meta SET value = '3' WHERE key = 'schema_version'",
    )

    first, second = runs_cached_twice(JobQueue(postgres_url))
    assert first == {"sum": "ran: no earlier result"} and second["sum"].startswith("cached")


SCHEMA_5_STATEMENTS = ("DROP TABLE step_code", "ALTER TABLE jobs DROP COLUMN code_digest")
"""What takes a queue back to schema 5: no code of steps shipped by value."""


def schema_5_queue(location, make_worker) -> tuple[str, str]:
    """A queue with a completed job and a pending one, as schema 6 writes it (the caller
    takes it back to schema 5); returns their ids."""
    queue = JobQueue(location)
    done = queue.submit(Job("done", jobs.add, params={"a": 1, "b": 1}))
    waiting = queue.submit(Job("waiting", jobs.identity, params={"value": "kept"},
                               dependencies=[done]))
    assert make_worker(location).process_one()
    queue.close()
    return done, waiting


def runs_on_after_the_upgrade(location, make_worker, done: str, waiting: str) -> None:
    """The upgraded queue kept its jobs and runs them, and steps shipped by value too."""
    queue = JobQueue(location)
    assert queue.get_result(done) == 2 and queue.get_status(waiting)["status"] == "pending"
    factor = 3

    def triple(x):
        return x * factor

    wf = Workflow("shipped")
    wf.add_task(triple, {"x": 5}, name="triple")
    wf.add_task(lambda: "anonymous", name="lambda")
    run = wf.submit(queue)
    assert drain(make_worker(location)) == 3
    assert queue.get_result(waiting) == "kept"
    assert run.results() == {"triple": 15, "lambda": "anonymous"}
    assert sql(location, "SELECT COUNT(*) FROM step_code") == [(2,)]
    assert sql(location, "SELECT COUNT(*) FROM jobs WHERE code_digest IS NOT NULL") == [(2,)]


def test_a_schema_5_file_gains_shipped_steps_in_place(tmp_path, make_worker):
    path = tmp_path / "five.db"
    done, waiting = schema_5_queue(path, make_worker)
    make_worker.close_all()
    conn = sqlite3.connect(path)
    conn.executescript(";".join((*SCHEMA_5_STATEMENTS, "PRAGMA user_version = 5")))
    conn.close()
    assert "code_digest" not in {row[1] for row in sql(path, "PRAGMA table_info(jobs)")}

    JobQueue(path).close()
    assert sql(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert "code_digest" in {row[1] for row in sql(path, "PRAGMA table_info(jobs)")}
    runs_on_after_the_upgrade(path, make_worker, done, waiting)


def test_a_schema_5_postgres_queue_gains_shipped_steps_in_place(postgres_url, make_worker):
    done, waiting = schema_5_queue(postgres_url, make_worker)
    make_worker.close_all()
    rewrite_postgres_schema(
        postgres_url, *SCHEMA_5_STATEMENTS,
        "UPDATE gigq_flow_meta SET value = '5' WHERE key = 'schema_version'")

    JobQueue(postgres_url).close()
    assert sql(postgres_url, "SELECT value FROM gigq_flow_meta WHERE key = 'schema_version'") \
        == [(str(SCHEMA_VERSION),)]
    runs_on_after_the_upgrade(postgres_url, make_worker, done, waiting)
