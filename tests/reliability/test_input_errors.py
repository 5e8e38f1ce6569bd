"""Bad input: each refused with a clear error of a documented type, and nothing written."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from support import jobs
from support.db import sql
from support.helpers import file_digest

from gigq_flow import (
    DatabaseError,
    GigqFlowError,
    Job,
    JobQueue,
    UnknownDependencyError,
    Worker,
    close_connections,
)
from gigq_flow.errors import SchemaVersionError


def settle(path) -> str:
    """Checkpoint the WAL into the main file, close everything, return its digest."""
    close_connections()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return file_digest(path)


def schema_of(path) -> list[tuple]:
    return sql(path, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name")


# -- files that cannot be queues -----------------------------------------------------------
@pytest.mark.parametrize("opener", [JobQueue, Worker], ids=["JobQueue", "Worker"])
def test_file_that_is_not_sqlite(tmp_path, opener):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    before = file_digest(path)
    with pytest.raises(DatabaseError) as info:
        opener(path)
    message = str(info.value)
    assert str(path) in message
    assert "not a SQLite database" in message
    close_connections()
    assert file_digest(path) == before


def make_newer_queue(path) -> None:
    """A queue file gigq_flow wrote, stamped as written by a future version."""
    JobQueue(path).submit(Job("j", jobs.noop))
    close_connections()
    sql(path, "PRAGMA user_version = 99")


@pytest.mark.parametrize("opener", [JobQueue, Worker], ids=["JobQueue", "Worker"])
def test_file_from_a_newer_version_is_refused_and_unchanged(tmp_path, opener):
    path = tmp_path / "future.db"
    make_newer_queue(path)
    before, schema = settle(path), schema_of(path)
    with pytest.raises(DatabaseError) as info:
        opener(path)
    assert isinstance(info.value, SchemaVersionError)
    assert str(path) in str(info.value)
    assert "newer" in str(info.value)
    assert settle(path) == before
    assert sql(path, "PRAGMA user_version") == [(99,)]
    assert schema_of(path) == schema


def make_foreign_db(path) -> None:
    conn = sqlite3.connect(path)  # default rollback journal, as most programs leave it
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.commit()
    conn.close()


def make_newer_rollback_journal_db(path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()


def test_sqlite_db_without_jobs_table_is_refused(tmp_path):
    path = tmp_path / "shop.db"
    make_foreign_db(path)
    with pytest.raises(DatabaseError) as info:
        JobQueue(path)
    assert str(path) in str(info.value)
    assert "customers" in str(info.value)
    close_connections()
    assert [row[1] for row in schema_of(path)] == ["customers"]  # no queue tables added
    assert sql(path, "SELECT name FROM customers") == [("Ada",)]


@pytest.mark.parametrize("maker", [make_foreign_db, make_newer_rollback_journal_db],
                         ids=["no-jobs-table", "newer-version"])
def test_refused_rollback_journal_file_keeps_its_bytes(tmp_path, maker):
    path = tmp_path / "other.db"
    maker(path)
    before = file_digest(path)
    with pytest.raises(DatabaseError):
        JobQueue(path)
    close_connections()
    assert file_digest(path) == before
    assert sql(path, "PRAGMA journal_mode") == [("delete",)]


@pytest.mark.parametrize("opener", [JobQueue, Worker], ids=["JobQueue", "Worker"])
def test_missing_parent_directory(tmp_path, opener):
    path = tmp_path / "no" / "such" / "dir" / "q.db"
    with pytest.raises(DatabaseError) as info:
        opener(path)
    assert str(path.parent) in str(info.value)
    assert "does not exist" in str(info.value)
    assert not (tmp_path / "no").exists()


def test_path_that_is_a_directory(tmp_path):
    with pytest.raises(DatabaseError, match="directory"):
        JobQueue(tmp_path)


# -- GigQ file with malformed dependencies -------------------------------------------------
def make_gigq_file(path) -> tuple[str, str]:
    """Two jobs written by gigq 0.5.1 (child depends on parent); returns their ids."""
    import gigq
    from gigq.db_utils import close_connections as gigq_close

    ids: list[str] = []

    def build() -> None:  # own thread: gigq caches connections per thread
        try:
            queue = gigq.JobQueue(str(path))
            parent = gigq.Job("parent", jobs.noop)
            child = gigq.Job("child", jobs.noop, dependencies=[parent.id])
            ids.extend([queue.submit(parent), queue.submit(child)])
        finally:
            gigq_close()

    thread = threading.Thread(target=build)
    thread.start()
    thread.join(30)
    return ids[0], ids[1]


@pytest.mark.parametrize("bad", ["[not json", "[1, 2]", "42"])
def test_malformed_dependencies_in_gigq_file(tmp_path, bad):
    path = tmp_path / "gigq.db"
    _, child = make_gigq_file(path)
    sql(path, "UPDATE jobs SET dependencies = ? WHERE id = ?", (bad, child))
    before, schema = settle(path), schema_of(path)

    with pytest.raises(DatabaseError) as info:
        JobQueue(path)
    assert child in str(info.value)
    assert str(path) in str(info.value)

    assert settle(path) == before
    assert schema_of(path) == schema  # the migration was rolled back as a whole
    assert sql(path, "PRAGMA user_version") == [(0,)]
    assert sql(path, "SELECT dependencies FROM jobs WHERE id = ?", (child,)) == [(bad,)]


@pytest.mark.parametrize("bad", ['"abc"', '{"a": 1}'])
def test_non_list_dependencies_in_gigq_file(tmp_path, bad):
    path = tmp_path / "gigq.db"
    _, child = make_gigq_file(path)
    sql(path, "UPDATE jobs SET dependencies = ? WHERE id = ?", (bad, child))
    with pytest.raises(DatabaseError, match=child):
        JobQueue(path)


def test_gigq_file_opens_when_dependencies_are_well_formed(tmp_path):
    """The control case of the malformed-dependencies tests."""
    path = tmp_path / "gigq.db"
    parent, child = make_gigq_file(path)
    queue = JobQueue(path)
    assert queue.get_status(child)["dependencies"] == [parent]
    worker = Worker(path)
    assert worker.process_one() and worker.process_one() and not worker.process_one()
    assert queue.stats()["completed"] == 2


# -- submit --------------------------------------------------------------------------------
def test_unknown_dependency_id_at_submit(queue):
    queue.submit(Job("existing", jobs.noop))
    job = Job("orphan", jobs.noop, dependencies=["no-such-parent"])
    with pytest.raises(UnknownDependencyError) as info:
        queue.submit(job)
    assert isinstance(info.value, ValueError)
    assert "no-such-parent" in str(info.value)
    assert "orphan" in str(info.value)
    assert queue.stats()["total"] == 1
    assert queue.get_status(job.id) == {"exists": False}


def test_job_depending_on_itself(queue):
    job = Job("self", jobs.noop)
    job.dependencies.append(job.id)
    with pytest.raises(ValueError, match="itself|own"):
        queue.submit(job)
    assert queue.stats()["total"] == 0


def test_job_submitted_twice(queue):
    job = Job("once", jobs.noop)
    queue.submit(job)
    with pytest.raises(GigqFlowError) as info:
        queue.submit(job)
    assert isinstance(info.value, ValueError)
    assert job.id in str(info.value)
    assert queue.stats()["total"] == 1


def test_submit_of_something_that_is_not_a_job(queue):
    with pytest.raises(GigqFlowError):
        queue.submit({"name": "x", "function": "support.jobs.noop"})
    assert queue.stats()["total"] == 0


def test_dependency_that_is_not_an_id(queue):
    parent = Job("p", jobs.noop)
    queue.submit(parent)
    with pytest.raises(GigqFlowError, match="dependencies"):
        queue.submit(Job("c", jobs.noop, dependencies=[parent]))
    assert queue.stats()["total"] == 1


@pytest.mark.parametrize("params", [[1, 2], "a=1", (("a", 1),)])
def test_params_that_are_not_a_dict(params):
    with pytest.raises(GigqFlowError, match="params") as info:
        Job("j", jobs.add, params=params)
    assert isinstance(info.value, (ValueError, TypeError))


@pytest.mark.parametrize("option", ["timeout", "max_attempts"])
@pytest.mark.parametrize("value", [0, -1])
def test_zero_or_negative_timeout_and_max_attempts(option, value):
    with pytest.raises(ValueError, match=option) as info:
        Job("j", jobs.noop, **{option: value})
    assert isinstance(info.value, GigqFlowError)


def test_negative_retry_delay():
    with pytest.raises(ValueError, match="retry_delay"):
        Job("j", jobs.noop, retry_delay=-1)


@pytest.mark.parametrize("interval", [0, -1, -0.5])
def test_polling_interval_must_be_positive(db_path, interval):
    with pytest.raises(ValueError, match="polling_interval") as info:
        Worker(db_path, polling_interval=interval)
    assert isinstance(info.value, GigqFlowError)


# -- queries -------------------------------------------------------------------------------
def test_list_jobs_unknown_status(queue):
    with pytest.raises(ValueError, match="bogus") as info:
        queue.list_jobs(status="bogus")
    assert isinstance(info.value, GigqFlowError)
    assert "pending" in str(info.value)  # names the valid ones


@pytest.mark.parametrize("limit", [-1, -100])
def test_list_jobs_negative_limit(queue, limit):
    queue.submit(Job("j", jobs.noop))
    with pytest.raises(ValueError, match="limit"):
        queue.list_jobs(limit=limit)
