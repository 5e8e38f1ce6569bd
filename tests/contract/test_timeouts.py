"""Timeouts: requeue while attempts remain, final timeout, fencing of stale outcomes."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from support import jobs
from support.helpers import status_of, wait_until

from gigq_flow import Job, Worker

pytestmark = pytest.mark.contract


@pytest.fixture
def key():
    """A fresh gate name; its release event is set at teardown so no thread stays blocked."""
    name = f"gate-{uuid.uuid4()}"
    yield name
    jobs.event(f"{name}:release").set()


def start_blocked(make_worker, db_path, key, worker_id="worker-A") -> threading.Thread:
    """Worker A claims the job in a thread; returns once the job function is running."""
    worker = make_worker(db_path, worker_id=worker_id)
    thread = threading.Thread(target=worker.process_one, daemon=True)
    thread.start()
    assert jobs.event(f"{key}:started").wait(10), "the job never started"
    return thread


def test_timed_out_job_is_requeued_and_stale_completion_is_discarded(queue, db_path, key,
                                                                     make_worker):
    job_id = queue.submit(Job("slow", jobs.block_first_attempt, params={"key": key},
                              timeout=1, max_attempts=2))
    claimed_at = time.monotonic()
    thread_a = start_blocked(make_worker, db_path, key)

    worker_b = make_worker(db_path, worker_id="worker-B")
    # Before the timeout the running job is left alone...
    assert worker_b.process_one() is False
    assert status_of(queue, job_id) == "running"
    # ...after it, worker B requeues it (attempts remain), claims it and runs attempt 2.
    wait_until(worker_b.process_one, timeout=10, interval=0.05)
    assert time.monotonic() - claimed_at >= 0.9

    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"], status["result"]) == ("completed", 2, "attempt 2")
    first, second = status["executions"]
    assert (first["worker_id"], first["status"]) == ("worker-A", "timeout")
    assert "timed out" in first["error"]
    assert (second["worker_id"], second["status"], second["result"]) == (
        "worker-B", "completed", "attempt 2")

    # Worker A's late completion ("first attempt") must not overwrite anything.
    jobs.event(f"{key}:release").set()
    thread_a.join(10)
    assert not thread_a.is_alive()
    status = queue.get_status(job_id)
    assert (status["status"], status["result"], status["attempts"]) == ("completed", "attempt 2", 2)
    assert [e["status"] for e in status["executions"]] == ["timeout", "completed"]
    assert status["executions"][0]["result"] is None
    assert queue.get_result(job_id) == "attempt 2"


def test_last_attempt_past_timeout_is_marked_timeout(queue, db_path, key, make_worker):
    job_id = queue.submit(Job("slow", jobs.block_until_released, params={"key": key},
                              timeout=1, max_attempts=1))
    child = queue.submit(Job("child", jobs.noop, dependencies=[job_id]))
    thread_a = start_blocked(make_worker, db_path, key)

    worker_b = make_worker(db_path, worker_id="worker-B")
    wait_until(lambda: (worker_b.process_one(), status_of(queue, job_id) == "timeout")[1],
               timeout=10, interval=0.05)
    status = queue.get_status(job_id)
    assert status["attempts"] == 1
    assert "timed out" in status["error"]
    assert [e["status"] for e in status["executions"]] == ["timeout"]
    assert status_of(queue, child) == "upstream_failed"

    # The stale completion is fenced off: still timeout, no result.
    jobs.event(f"{key}:release").set()
    thread_a.join(10)
    status = queue.get_status(job_id)
    assert (status["status"], status["result"]) == ("timeout", None)
    assert queue.get_result(job_id) is None
    assert [e["status"] for e in status["executions"]] == ["timeout"]
    assert status_of(queue, child) == "upstream_failed"

    # A timed-out job can be requeued.
    assert queue.requeue_job(job_id) is True
    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"], status["error"]) == ("pending", 0, None)
    assert status_of(queue, child) == "pending"


def test_idle_thread_of_a_worker_expires_its_sibling_job(queue, db_path, key):
    """With concurrency=2 the idle thread times out the job the other thread runs,
    well before the 5 s polling interval."""
    job_id = queue.submit(Job("slow", jobs.block_until_released, params={"key": key},
                              timeout=1, max_attempts=1))
    worker = Worker(db_path, worker_id="pair", polling_interval=5, concurrency=2)
    worker.start_background()
    try:
        assert jobs.event(f"{key}:started").wait(10)
        started = time.monotonic()
        wait_until(lambda: status_of(queue, job_id) == "timeout", timeout=8)
        assert time.monotonic() - started < 3.5
    finally:
        jobs.event(f"{key}:release").set()
        worker.stop(wait=True, timeout=10)
    status = queue.get_status(job_id)
    assert (status["status"], status["result"]) == ("timeout", None)
    assert status["executions"][0]["worker_id"] in {"pair-0", "pair-1"}
