"""Interleavings that SQLite's serialized writes rule out and a database server allows:
each test pauses one transaction at the worst moment and lets the others go.

Without row locks on PostgreSQL, a child submitted while its parent completes waited
forever, and a second expiry of an overdue job undid the claim made in between.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from support import jobs
from support.db import claim_as, lapse_lease
from support.helpers import drain, status_of

from gigq_flow import Job, JobQueue
from gigq_flow.store import open_store

pytestmark = pytest.mark.contract

BLOCKED_FOR = 0.5
"""How long a test lets a transaction that should wait try to go through."""


class PausingTx:
    """A transaction that stops after the first statement starting with ``prefix``."""

    def __init__(self, tx, prefix: str, reached: threading.Event, go: threading.Event):
        self.tx, self.prefix, self.reached, self.go = tx, prefix, reached, go

    def execute(self, statement, params=()):
        cursor = self.tx.execute(statement, params)
        if statement.lstrip().startswith(self.prefix) and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(10)
        return cursor

    def executemany(self, statement, rows):
        return self.tx.executemany(statement, rows)


def pause_store(store, prefix: str) -> tuple[threading.Event, threading.Event]:
    """Make ``store``'s next transaction stop after its ``prefix`` statement."""
    reached, go = threading.Event(), threading.Event()
    real_run = store.db.run
    store.db.run = lambda body: real_run(lambda tx: body(PausingTx(tx, prefix, reached, go)))
    return reached, go


def start(target, *args) -> tuple[threading.Thread, list]:
    results: list = []
    thread = threading.Thread(target=lambda: results.append(target(*args)), daemon=True)
    thread.start()
    return thread, results


def paused_submit(db_path, job: Job) -> tuple[threading.Thread, threading.Event, threading.Event]:
    """Submit ``job`` in a thread that stops once its parents' statuses are read."""
    submitter = JobQueue(db_path)
    read_parents, go = threading.Event(), threading.Event()
    real_insert = submitter.store._insert_jobs

    def insert_after_pause(*args):
        read_parents.set()
        assert go.wait(10)
        return real_insert(*args)

    submitter.store._insert_jobs = insert_after_pause
    thread, _ = start(submitter.submit, job)
    assert read_parents.wait(10)
    return thread, read_parents, go


def test_child_submitted_while_its_parent_completes_is_released(queue, db_path, make_worker):
    key = f"gate-{uuid.uuid4()}"
    parent = queue.submit(Job("parent", jobs.block_until_released, params={"key": key}))
    worker_a, _ = start(make_worker(db_path).process_one)
    try:
        assert jobs.event(f"{key}:started").wait(10)
        child = Job("child", jobs.identity, params={"value": "ran"}, dependencies=[parent])
        submit, _, go = paused_submit(db_path, child)  # has read its parent running...
        jobs.event(f"{key}:release").set()
        worker_a.join(BLOCKED_FOR)  # ...which now completes, or waits for the submit
        go.set()
        submit.join(10)
        worker_a.join(10)
    finally:
        jobs.event(f"{key}:release").set()
    assert not submit.is_alive() and not worker_a.is_alive()
    assert status_of(queue, parent) == "completed"
    assert drain(make_worker(db_path)) == 1  # the child was released by its parent
    assert queue.get_result(child.id) == "ran"


def test_a_second_expiry_never_undoes_the_claim_made_after_the_first(queue, db_path):
    job_id = queue.submit(Job("j", jobs.identity, params={"value": 1}, max_attempts=3))
    _, instance, lost = claim_as(db_path, "lost-worker")
    assert lost is not None
    lapse_lease(db_path, instance)

    expirer_b, expirer_a, claimer = (open_store(db_path) for _ in range(3))
    selected, go = pause_store(expirer_b, "SELECT id, execution_id")
    b, expired_b = start(expirer_b.reclaim_lost)
    assert selected.wait(10)  # B has read the lost worker's jobs, and stops there
    a, expired_a = start(expirer_a.reclaim_lost)
    a.join(BLOCKED_FOR)
    c, claims = start(claimer.claim, "new-worker", "f" * 16 + "-1")
    c.join(BLOCKED_FOR)
    go.set()
    for thread in (a, b, c):
        thread.join(10)
        assert not thread.is_alive()

    assert sum(expired_a + expired_b) == 1  # one expiry of the lost attempt, not two
    claim = claims[0] or claimer.claim("new-worker", "f" * 16 + "-2")
    assert claim is not None and claim.worker_id == "new-worker"
    assert claimer.complete(claim, "2") is True  # the new claim was not undone
    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"], status["result"]) == ("completed", 2, 2)
    assert [(e["worker_id"], e["status"]) for e in status["executions"]] == [
        ("lost-worker", "lost"), ("new-worker", "completed")]


def test_grandchild_submitted_while_its_grandparent_is_cancelled_is_marked(queue, db_path,
                                                                           make_worker):
    root = queue.submit(Job("root", jobs.noop))
    child = queue.submit(Job("child", jobs.noop, dependencies=[root]))
    grandchild = Job("grandchild", jobs.noop, dependencies=[child])
    submit, _, go = paused_submit(db_path, grandchild)  # has read its parent pending...
    cancel, cancelled = start(queue.cancel, root)  # ...while the root is cancelled
    cancel.join(BLOCKED_FOR)
    go.set()
    for thread in (submit, cancel):
        thread.join(10)
        assert not thread.is_alive()
    assert cancelled == [True]
    assert [status_of(queue, j) for j in (root, child, grandchild.id)] == [
        "cancelled", "upstream_failed", "upstream_failed"]
    assert make_worker(db_path).process_one() is False
