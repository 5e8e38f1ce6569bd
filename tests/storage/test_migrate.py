"""Moving a queue: ``copy_queue`` and ``gigq-flow migrate`` between SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pytest
from support import jobs
from support.cli import run_cli
from support.db import claim_as, lapse_lease, sql
from support.helpers import drain

from gigq_flow import DatabaseError, Job, JobQueue, Worker, Workflow, shipping
from gigq_flow.errors import DestinationNotEmptyError
from gigq_flow.migrate import copy_queue
from gigq_flow.store import open_store

TABLES = ("workflows", "jobs", "job_dependencies", "ended_attempts", "workers", "result_blobs",
          "attempt_output", "step_code", "tag_limits", "cache_entries")


def build_source(path, tmp_path) -> dict[str, str]:
    """A queue with every kind of row: a finished cached workflow (completed, retried, failed,
    upstream_failed, pickled), a cancelled job and a pending DAG with a closure (its code
    shipped by value) and a step under a limit; returns ids by name."""
    queue = JobQueue(path)
    done = Workflow("finished")
    load = done.add_task(jobs.identity, {"value": {"rows": [1, 2]}}, name="load")
    flaky = done.add_task(jobs.fail_n_times, {"counter_path": str(tmp_path / "n"), "n": 1,
                                                  "value": "second try"},
                          depends_on=[load], name="flaky", max_attempts=2)
    broken = done.add_task(jobs.fail, {"message": "kaput"}, name="broken",
                           max_attempts=1)
    done.add_task(jobs.noop, depends_on=[broken, flaky], name="after-broken")
    pickled = done.add_task(jobs.identity, {"value": {1, 2}}, name="pickled",
                            serializer="pickle")
    done.add_task(jobs.identity, {"value": "large " * 500}, name="large")  # a result blob
    done.add_task(jobs.talk, {"label": "talk"}, name="talk")  # its output
    run = done.submit(queue, cache=True)  # results in result_blobs, entries too
    worker = Worker(path, worker_id="old-worker", allow_pickle=True)
    drain(worker)
    worker.close()  # else its heartbeat goes on writing to the file the tests compare
    assert run.done
    cancelled = queue.submit(Job("cancelled", jobs.noop))
    queue.cancel(cancelled)
    todo = Workflow("to do")
    first = todo.add_task(jobs.identity, {"value": 20}, name="first")
    todo.add_task(jobs.add, {"a": 1, "b": 1}, name="second", priority=3)
    todo.add_task(jobs.takes_parent_results, depends_on=[first], name="child")
    offset = 100

    def shifted(x):
        return x + offset

    closure = todo.add_task(shifted, {"x": 1}, name="shifted")
    todo.add_task(jobs.noop, name="gated", tags=["gpu"])  # a limit and its gate
    queue.set_limit("gpu", 1)
    pending = todo.submit(queue)
    queue.close()
    return {"load": load.id, "flaky": flaky.id, "pickled": pickled.id, "done": run.id,
            "pending": pending.id, "cancelled": cancelled, "closure": closure.id}


def every_row(location) -> dict[str, list[dict]]:
    store = open_store(location)
    try:
        return store.export_rows()
    finally:
        store.close()


def test_round_trip_sqlite_postgres_sqlite_preserves_every_row(tmp_path, postgres_url,
                                                               monkeypatch):
    source, back = tmp_path / "source.db", tmp_path / "back.db"
    ids = build_source(source, tmp_path)
    original = every_row(source)
    assert {table: len(rows) > 0 for table, rows in original.items()} == dict.fromkeys(TABLES, True)

    copied = copy_queue(source, postgres_url)
    assert copied == {table: len(original[table]) for table in TABLES}
    assert every_row(postgres_url) == original
    assert copy_queue(postgres_url, back) == copied
    assert every_row(back) == original

    # Through the public API too: the same statuses, results and attempts everywhere.
    queues = [JobQueue(location) for location in (source, postgres_url, back)]
    for job_id in (row["id"] for row in original["jobs"]):
        views = [queue.get_status(job_id) for queue in queues]
        assert views[1] == views[0] and views[2] == views[0]
    assert queues[1].get_status(ids["flaky"])["attempts"] == 2
    assert [e["status"] for e in queues[1].get_status(ids["flaky"])["executions"]] == [
        "failed", "completed"]
    assert queues[2].get_workflow(ids["done"]).results()["pickled"] == {1, 2}
    assert queues[1].list_workflows() == queues[0].list_workflows()
    # GigQ-style SQL still reads the file that came back from PostgreSQL.
    assert sql(back, "SELECT params FROM jobs WHERE id = ?", (ids["load"],)) == [
        ('{"value": {"rows": [1, 2]}}',)]
    # The closure's code came along: a worker that must read it from the queue runs it.
    monkeypatch.setattr(shipping, "_shipped", {})  # forget what this process shipped
    worker = Worker(back, allow_pickle=True)
    try:
        assert drain(worker) == 5  # the pending DAG
    finally:
        worker.close()
    assert queues[2].get_result(ids["closure"]) == 101


def test_pending_jobs_run_after_migration_to_postgres(tmp_path, postgres_url):
    source = tmp_path / "source.db"
    ids = build_source(source, tmp_path)
    copy_queue(source, postgres_url)
    queue = JobQueue(postgres_url)
    run = queue.get_workflow(ids["pending"])
    assert not run.done
    with Worker(postgres_url, polling_interval=0.1, concurrency=2):
        assert run.wait(timeout=30)
    assert run.results() == {"first": 20, "second": 2,
                             "child": {"ids": [run.snapshot().jobs[0].id], "values": [20],
                                       "by_name": {"first": 20}},
                             "shifted": 101, "gated": None}
    assert queue.stats()["pending"] == 0
    assert queue.limits() == {"gpu": 1}


def test_migration_between_files_and_back_runs_pending_jobs(tmp_path):
    source, moved = tmp_path / "source.db", tmp_path / "moved.db"
    ids = build_source(source, tmp_path)
    copy_queue(source, moved)
    drain(Worker(moved))
    assert JobQueue(moved).get_workflow(ids["pending"]).snapshot().succeeded
    assert JobQueue(source).get_workflow(ids["pending"]).snapshot().done is False  # untouched


def test_a_job_running_during_the_copy_is_reclaimed_on_the_destination(tmp_path):
    source, moved = tmp_path / "source.db", tmp_path / "moved.db"
    job_id = JobQueue(source).submit(Job("long", jobs.identity, params={"value": 5}))
    _, instance, claim = claim_as(source, "old-host")
    assert claim is not None
    copy_queue(source, moved)
    assert JobQueue(moved).get_status(job_id)["status"] == "running"
    lapse_lease(moved, instance)  # the worker on the old host is gone
    drain(Worker(moved))
    status = JobQueue(moved).get_status(job_id)
    assert (status["status"], status["result"], status["attempts"]) == ("completed", 5, 2)
    assert [e["status"] for e in status["executions"]] == ["lost", "completed"]


# -- refusals ------------------------------------------------------------------------------
def test_non_empty_destination_is_refused_and_left_untouched(tmp_path, postgres_url):
    source = tmp_path / "source.db"
    build_source(source, tmp_path)
    destination = JobQueue(postgres_url)
    kept = destination.submit(Job("already here", jobs.noop))
    before = every_row(postgres_url)
    with pytest.raises(DestinationNotEmptyError) as info:
        copy_queue(source, postgres_url)
    message = str(info.value)
    assert "schema=" in message and "1 jobs" in message and "force" in message
    assert every_row(postgres_url) == before

    copy_queue(source, postgres_url, force=True)  # replaces, never merges
    assert every_row(postgres_url) == every_row(source)
    assert destination.get_status(kept) == {"exists": False}


def test_same_queue_and_missing_source_are_refused(tmp_path):
    path = tmp_path / "q.db"
    JobQueue(path).submit(Job("j", jobs.noop))
    with pytest.raises(DatabaseError, match="same queue"):
        copy_queue(path, str(tmp_path / "." / "q.db"))
    with pytest.raises(DatabaseError, match="does not exist"):
        copy_queue(tmp_path / "typo.db", tmp_path / "new.db")
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "new.db").exists()


# -- the command ---------------------------------------------------------------------------
@pytest.mark.usefixtures("cli_subprocesses")
def test_cli_migrate_copies_then_refuses_a_non_empty_destination_with_status_2(tmp_path):
    source, moved = tmp_path / "source.db", tmp_path / "moved.db"
    build_source(source, tmp_path)
    first = run_cli("migrate", source, moved, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "jobs" in first.stdout and "ended_attempts" in first.stdout
    assert every_row(moved) == every_row(source)

    again = run_cli("migrate", source, moved, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    assert again.stderr.startswith("gigq-flow: error: ")
    assert os.fspath(moved) in again.stderr and "--force" in again.stderr

    forced = run_cli("migrate", source, moved, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert every_row(moved) == every_row(source)


def test_cli_migrate_to_postgres_and_back(tmp_path, postgres_url):
    source, back = tmp_path / "source.db", tmp_path / "back.db"
    build_source(source, tmp_path)
    assert run_cli("migrate", source, postgres_url, cwd=tmp_path).returncode == 0
    refused = run_cli("migrate", source, postgres_url, cwd=tmp_path)
    assert refused.returncode == 2 and "schema=" in refused.stderr
    assert run_cli("migrate", postgres_url, back, cwd=tmp_path).returncode == 0
    assert every_row(back) == every_row(source)
