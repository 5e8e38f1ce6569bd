"""Graceful shutdown of ``Worker.start()`` in a subprocess: signals, grace period, exit codes.

First SIGTERM/SIGINT: claim nothing more, let running jobs finish within the grace
period, return the unfinished ones to the queue (the attempt does not count), exit 0.
Second signal: exit at once with 128 + the signal number; the lease recovers the job.
"""

from __future__ import annotations

import signal
import time

import pytest
from support import jobs
from support.helpers import lines, wait_until
from support.processes import hold_job

from gigq_flow import Job, Worker

pytestmark = pytest.mark.contract

GRACE = 1.0


def started_worker(pool, queue, db_path, started, **options):
    worker = pool.spawn("w", **options)
    wait_until(lambda: lines(started), 30, what="the job runs")
    assert worker.registered(db_path)  # start() runs: its signal handlers are in place
    return worker


def test_sigterm_during_a_short_job_lets_it_finish(queue, db_path, tmp_path, pool):
    started = str(tmp_path / "started")
    job = queue.submit(Job("short", jobs.sleep_for, priority=1,
                           params={"seconds": 0.8, "started": started}))
    later = queue.submit(Job("later", jobs.noop))
    worker = started_worker(pool, queue, db_path, started, grace=10, poll=0.2)

    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = worker.wait(30)
    elapsed = time.monotonic() - sent
    assert code == 0, worker.output()
    assert "exited cleanly" in worker.output()
    assert elapsed < 0.8 + 3  # it waited for the job, not for the 10 s grace period

    status = queue.get_status(job)
    assert (status["status"], status["result"], status["attempts"]) == ("completed", 0.8, 1)
    assert [e["status"] for e in status["executions"]] == ["completed"]
    assert queue.get_status(later)["status"] == "pending"  # nothing claimed after the signal
    assert {w["id"]: w["state"] for w in queue.list_workers()} == {"w": "stopped"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_long_job_returns_it_after_the_grace_period(
        queue, db_path, tmp_path, pool, signum):
    long_job, started, release = hold_job(tmp_path, "long", max_attempts=2)
    job = queue.submit(long_job)
    worker = started_worker(pool, queue, db_path, started, grace=GRACE, poll=0.2)

    sent = time.monotonic()
    worker.signal(signum)
    code = worker.wait(30)
    elapsed = time.monotonic() - sent
    print(f"\nFIGURE shutdown with a long job: grace={GRACE}s exit={code} after {elapsed:.2f}s")
    assert code == 0, worker.output()
    assert "exited cleanly" in worker.output()
    assert GRACE * 0.9 <= elapsed < GRACE + 2.0

    status = queue.get_status(job)
    assert status["status"] == "pending"  # back in the queue
    assert status["attempts"] == 0  # the interrupted attempt does not count
    assert status["worker_id"] is None
    [execution] = status["executions"]
    assert execution["status"] == "interrupted"
    assert "returned to the queue" in execution["error"]
    assert {w["id"]: w["state"] for w in queue.list_workers()} == {"w": "stopped"}

    open(release, "w").close()  # the next worker runs it to the end, on its first attempt
    rescuer = Worker(db_path, worker_id="next", lease_timeout=GRACE)
    try:
        assert rescuer.process_one()
    finally:
        rescuer.close()
    status = queue.get_status(job)
    assert (status["status"], status["attempts"]) == ("completed", 1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_second_signal_exits_at_once_and_the_lease_recovers_the_job(
        queue, db_path, tmp_path, pool, signum):
    long_job, started, release = hold_job(tmp_path, "long", max_attempts=2)
    job = queue.submit(long_job)
    worker = started_worker(pool, queue, db_path, started, grace=30, lease=GRACE, poll=0.2)

    worker.signal(signum)
    time.sleep(0.3)
    assert worker.alive()  # waiting out its 30 s grace period
    sent = time.monotonic()
    worker.signal(signum)
    code = worker.wait(30)
    elapsed = time.monotonic() - sent
    print(f"\nFIGURE second signal: exit={code} after {elapsed:.2f}s")
    assert code == 128 + signum
    assert elapsed < 2.0
    assert "exited cleanly" not in worker.output()
    assert queue.get_status(job)["status"] == "running"  # nothing written on the way out

    open(release, "w").close()
    rescuer = Worker(db_path, worker_id="rescuer", lease_timeout=GRACE)
    try:
        wait_until(rescuer.process_one, 10, interval=0.1, what="the lease expires")
    finally:
        rescuer.close()
    status = queue.get_status(job)
    assert (status["status"], status["attempts"]) == ("completed", 2)
    assert [(e["worker_id"], e["status"]) for e in status["executions"]] == [
        ("w", "lost"), ("rescuer", "completed")]
