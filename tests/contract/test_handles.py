"""The handles' own ways in: a Worker built from a JobQueue, reading pickled payloads
without unpickling them, GigQ's db_utils connections, and an option a backend refuses."""

from __future__ import annotations

import dataclasses
import pickle
import sqlite3
import threading

import pytest
from support import jobs

import gigq_flow
from gigq_flow import Job, JobQueue
from gigq_flow.codec import to_new_job
from gigq_flow.db_utils import close_connection, close_connections, get_connection
from gigq_flow.errors import ConfigurationError

pytestmark = pytest.mark.contract


def test_a_worker_built_from_a_queue_shares_its_store(queue, make_worker):
    job_id = queue.submit(Job("add", jobs.add, params={"a": 2, "b": 3}))
    worker = make_worker(queue, worker_id="from-queue")
    assert worker.store is queue.store and worker.db_path == queue.db_path
    assert worker.process_one()
    assert queue.get_result(job_id) == 5
    assert queue.get_status(job_id)["worker_id"] == "from-queue"
    assert queue.status_of(job_id) == "completed" and queue.status_of("no-such-id") is None


def test_a_pickled_job_is_read_without_unpickling_when_asked(queue, tmp_path):
    marker = tmp_path / "unpickled"
    job = Job("pickled", jobs.identity, params={"value": "x"}, serializer="pickle")
    payload = pickle.dumps({"value": jobs.UnpicklingSideEffect(str(marker))})
    queue.store.submit([dataclasses.replace(to_new_job(job), params=payload)])
    shown = queue.get_status(job.id, unpickle=False)
    assert shown["params"] == f"<pickled, {len(payload)} bytes; not decoded>"
    assert [listed["params"] for listed in queue.list_jobs(unpickle=False)] == [shown["params"]]
    assert not marker.exists()  # nothing was unpickled
    queue.get_status(job.id)  # the default decodes, as GigQ does
    assert marker.exists()


def test_synchronous_is_refused_for_a_server_url(postgres_url):
    with pytest.raises(ConfigurationError, match="synchronous= sets a SQLite file"):
        JobQueue(postgres_url, synchronous="FULL")


@pytest.mark.sqlite_only(reason="db_utils reads SQLite files, as GigQ's does")
def test_db_utils_gives_each_thread_its_connection(queue, db_path):
    queue.submit(Job("add", jobs.add, params={"a": 1, "b": 1}))
    conn = get_connection(db_path)
    assert get_connection(str(db_path)) is conn  # reused in this thread
    row = conn.execute("SELECT name, status FROM jobs").fetchone()
    assert (row["name"], row["status"]) == ("add", "pending")  # rows read by name
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    others: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: others.append(get_connection(db_path)))
    thread.start()
    thread.join()
    assert others[0] is not conn
    close_connection(db_path)
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    assert get_connection(db_path) is not conn  # opened again on use
    close_connections()
    assert queue.stats()["pending"] == 1  # the queue reopens its own connection
    assert gigq_flow.close_connections is close_connections
