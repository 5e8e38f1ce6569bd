"""GigQ 0.5 files open in place: jobs keep their state and run; GigQ-style SQL still reads them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta

import pytest
from support.db import sql
from support.helpers import drain, subprocess_env

from gigq_flow import JobQueue, Worker

GIGQ_JOB_COLUMNS = [
    "id", "name", "function_name", "function_module", "params", "priority", "dependencies",
    "max_attempts", "timeout", "description", "status", "created_at", "updated_at", "attempts",
    "result", "error", "started_at", "completed_at", "worker_id", "pass_parent_results",
    "retry_delay", "retry_after",
]
GIGQ_EXECUTION_COLUMNS = [
    "id", "job_id", "worker_id", "status", "started_at", "completed_at", "result", "error",
]

# Runs under the real gigq 0.5.1 in its own process, as a GigQ user's program would.
BUILD_WITH_GIGQ = """
import json, sys
import gigq
from gigq.db_utils import close_connections
from support import jobs

db, log = sys.argv[1:3]
queue = gigq.JobQueue(db)
done = gigq.Job("done", jobs.identity, params={"value": {"x": 1}}, priority=100)
broken = gigq.Job("broken", jobs.fail, params={"message": "gigq broke"},
                  max_attempts=1, priority=50)
queue.submit(done)
queue.submit(broken)
worker = gigq.Worker(db, worker_id="gigq-worker")
assert worker.process_one() and worker.process_one()
waiting = gigq.Job("waiting", jobs.record_call, params={"log_path": log, "label": "waiting"})
child = gigq.Job("child", jobs.takes_parent_results, dependencies=[done.id, waiting.id],
                 priority=10)
plain = gigq.Job("plain", jobs.add, params={"a": 20, "b": 22}, priority=5)
for job in (waiting, child, plain):
    queue.submit(job)
close_connections()
print(json.dumps({"done": done.id, "broken": broken.id, "waiting": waiting.id,
                  "child": child.id, "plain": plain.id}))
"""


@pytest.fixture
def gigq_file(tmp_path):
    """A queue file written by gigq 0.5.1: one completed, one failed, three pending jobs."""
    path = tmp_path / "gigq.db"
    script = tmp_path / "build_gigq.py"
    script.write_text(textwrap.dedent(BUILD_WITH_GIGQ))
    out = subprocess.run([sys.executable, str(script), str(path), str(tmp_path / "calls.log")],
                         env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return path, json.loads(out.stdout)


def test_gigq_file_is_a_plain_gigq_file(gigq_file):
    path, _ = gigq_file
    tables = {row[0] for row in sql(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"jobs", "job_executions"}
    assert sql(path, "PRAGMA user_version") == [(0,)]


def test_gigq_file_opens_in_place_and_its_jobs_run(gigq_file, tmp_path):
    path, ids = gigq_file
    queue = JobQueue(path)

    stats = queue.stats()
    assert (stats["completed"], stats["failed"], stats["pending"], stats["total"]) == (1, 1, 3, 5)
    # The completed job keeps its result and its GigQ execution history.
    assert queue.get_result(ids["done"]) == {"x": 1}
    done = queue.get_status(ids["done"])
    assert [(e["worker_id"], e["status"]) for e in done["executions"]] == [
        ("gigq-worker", "completed")]
    assert done["executions"][0]["result"] == {"x": 1}
    broken = queue.get_status(ids["broken"])
    assert broken["status"] == "failed" and "gigq broke" in broken["error"]
    child = queue.get_status(ids["child"])
    assert child["dependencies"] == [ids["done"], ids["waiting"]]
    assert child["pass_parent_results"] is None

    worker = Worker(path, worker_id="flow-worker")
    # The child outranks the others but waits for "waiting": priority order is plain,
    # waiting, child.
    assert worker.process_one()
    assert queue.get_result(ids["plain"]) == 42
    assert queue.get_status(ids["child"])["status"] == "pending"
    assert drain(worker) == 2
    assert (tmp_path / "calls.log").read_text() == "waiting\n"
    assert queue.get_result(ids["child"])["ids"] == [ids["done"], ids["waiting"]]
    assert queue.get_result(ids["child"])["values"] == [{"x": 1}, "waiting"]
    assert queue.stats()["completed"] == 4

    # A failed GigQ job can be requeued and run by gigq_flow.
    assert queue.requeue_job(ids["broken"])
    assert drain(worker) == 1
    assert queue.get_status(ids["broken"])["attempts"] == 1


def test_gigq_style_sql_still_works_after_migration(gigq_file):
    path, ids = gigq_file
    JobQueue(path)
    drain(Worker(path))

    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM jobs").fetchall()
        assert len(rows) == 5
        columns = list(rows[0].keys())
        assert columns[: len(GIGQ_JOB_COLUMNS)] == GIGQ_JOB_COLUMNS  # GigQ's columns, in order
        by_id = {row["id"]: row for row in rows}
        assert by_id[ids["plain"]]["status"] == "completed"
        assert json.loads(by_id[ids["plain"]]["result"]) == 42
        assert json.loads(by_id[ids["child"]]["dependencies"]) == [ids["done"], ids["waiting"]]
        assert json.loads(by_id[ids["plain"]]["params"]) == {"a": 20, "b": 22}
        # Every attempt, with GigQ's execution columns, under GigQ's name: the view lists
        # the ended ones (ended_attempts) and the latest, which the job row holds.
        attempts = conn.execute("SELECT * FROM job_executions WHERE job_id = ?",
                                (ids["plain"],))
        attempt = attempts.fetchone()
        assert list(attempt.keys())[: len(GIGQ_EXECUTION_COLUMNS)] == GIGQ_EXECUTION_COLUMNS
        assert attempt["status"] == "completed"
        counts = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        assert counts == {"completed": 4, "failed": 1}
    finally:
        conn.close()


def test_gigq_reads_the_migrated_file(gigq_file):
    """gigq 0.5.1 itself can still inspect the file gigq_flow migrated and ran."""
    import gigq
    from gigq.db_utils import close_connections

    path, ids = gigq_file
    JobQueue(path)
    drain(Worker(path))
    seen: dict = {}

    def read_with_gigq() -> None:  # own thread: gigq's connection cache is thread-local
        try:
            queue = gigq.JobQueue(str(path), initialize=False)
            seen["child"] = queue.get_status(ids["child"])
            seen["stats"] = queue.stats()
        finally:
            close_connections()

    thread = threading.Thread(target=read_with_gigq)
    thread.start()
    thread.join(30)
    assert seen["child"]["status"] == "completed"
    assert seen["child"]["result"]["values"] == [{"x": 1}, "waiting"]
    assert seen["stats"]["completed"] == 4 and seen["stats"]["failed"] == 1


# -- a file built with SQL only, as an older GigQ 0.5 wrote it --------------------------------
OLD_GIGQ_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, function_name TEXT NOT NULL,
    function_module TEXT NOT NULL, params TEXT, priority INTEGER DEFAULT 0, dependencies TEXT,
    max_attempts INTEGER DEFAULT 3, timeout INTEGER DEFAULT 300, description TEXT,
    status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    attempts INTEGER DEFAULT 0, result TEXT, error TEXT, started_at TEXT, completed_at TEXT,
    worker_id TEXT
);
CREATE INDEX idx_jobs_status ON jobs (status);
CREATE INDEX idx_jobs_priority ON jobs (priority);
CREATE TABLE job_executions (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, worker_id TEXT NOT NULL, status TEXT NOT NULL,
    started_at TEXT NOT NULL, completed_at TEXT, result TEXT, error TEXT,
    FOREIGN KEY (job_id) REFERENCES jobs (id)
);
"""


def insert_job(conn, job_id, status, *, function="add", params=None, dependencies=(),
               priority=0, started_at=None, attempts=0, result=None, timeout=300, worker_id=None,
               created_at=None):
    now = (created_at or datetime.now()).isoformat()
    conn.execute(
        "INSERT INTO jobs (id, name, function_name, function_module, params, priority, "
        "dependencies, max_attempts, timeout, description, status, created_at, updated_at, "
        "attempts, result, started_at, worker_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (job_id, job_id, function, "support.jobs", json.dumps(params or {}), priority,
         json.dumps(list(dependencies)), 3, timeout, "", status, now, now, attempts,
         result, started_at, worker_id),
    )


def test_sql_built_old_gigq_file_migrates_and_runs(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_GIGQ_SCHEMA)
    base = datetime.now() - timedelta(minutes=10)
    insert_job(conn, "parent", "completed", result=json.dumps(5), attempts=1,
               created_at=base)
    insert_job(conn, "child", "pending", function="takes_parent_results",
               dependencies=["parent", "stuck"], created_at=base + timedelta(seconds=1))
    # Left running by a GigQ worker that died ten minutes ago; its timeout is 1 s.
    insert_job(conn, "stuck", "running", function="identity", params={"value": "recovered"},
               started_at=base.isoformat(), attempts=1, timeout=1, worker_id="dead-worker",
               created_at=base + timedelta(seconds=2))
    insert_job(conn, "gone-parent", "pending", function="identity", params={"value": "ok"},
               dependencies=["deleted-long-ago"], created_at=base + timedelta(seconds=3))
    conn.commit()
    conn.close()

    queue = JobQueue(path)
    assert queue.get_status("child")["status"] == "pending"
    assert queue.get_status("stuck")["pass_parent_results"] is None

    assert drain(Worker(path)) == 3
    stuck = queue.get_status("stuck")
    assert (stuck["status"], stuck["result"], stuck["attempts"]) == ("completed", "recovered", 2)
    assert queue.get_result("child")["values"] == [5, "recovered"]
    # As in GigQ, a dependency on a job that no longer exists counts as satisfied.
    assert queue.get_result("gone-parent") == "ok"
    columns = [row[1] for row in sql(path, "PRAGMA table_info(jobs)")]
    assert columns[:19] == GIGQ_JOB_COLUMNS[:19]  # the old columns keep their places
    assert set(GIGQ_JOB_COLUMNS) <= set(columns)  # and GigQ's later ones were added


def test_empty_file_becomes_a_new_queue(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    queue = JobQueue(path)
    assert queue.stats()["total"] == 0
    tables = {row[0] for row in sql(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "ended_attempts"} <= tables
    views = {row[0] for row in sql(path, "SELECT name FROM sqlite_master WHERE type = 'view'")}
    assert views == {"job_executions"}


def test_reopening_a_migrated_file_is_a_no_op(gigq_file):
    path, ids = gigq_file
    JobQueue(path)
    version = sql(path, "PRAGMA user_version")
    schema = sql(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    queue = JobQueue(path)
    assert sql(path, "PRAGMA user_version") == version
    assert sql(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
    assert queue.stats()["total"] == 5
