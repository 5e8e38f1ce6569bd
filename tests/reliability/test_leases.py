"""Leases, heartbeats, fencing and poison jobs, with real worker processes.

A worker process holds a lease, renewed by its heartbeat thread, on the jobs it runs;
when the process dies (SIGKILL) or freezes (SIGSTOP) past its lease, another worker
reclaims the jobs, and whatever the first one writes afterwards is fenced off.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from datetime import datetime

import pytest
from support import jobs
from support.db import is_postgres, sql
from support.helpers import lines, wait_until
from support.jobs import FAIL_ENV
from support.processes import WorkerProcess, hold_job

from gigq_flow import Job, Worker
from gigq_flow.store import open_store

pytestmark = pytest.mark.contract

LEASE = 1.0


def job_row(db_path, job_id: str) -> dict:
    return open_store(db_path).get_job(job_id)


def lease_end(db_path, worker_id: str) -> float:
    """When the lease of the worker process named ``worker_id`` runs out (epoch seconds)."""
    [(end,)] = sql(db_path, "SELECT last_heartbeat + lease_timeout FROM workers WHERE id = ?",
                   (worker_id,))
    return end


def all_job_rows(db_path) -> list[tuple]:
    return sql(db_path, "SELECT * FROM jobs ORDER BY id")


def write_lock_free(db_path) -> bool:
    """True when no process holds the write lock (e.g. a worker frozen mid-transaction);
    on PostgreSQL, when no other session holds more than a read lock on the queue."""
    if is_postgres(db_path):
        return not sql(db_path, """
            SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND l.pid <> pg_backend_pid()
              AND l.mode <> 'AccessShareLock'""")
    conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def freeze(worker: WorkerProcess, db_path) -> None:
    """SIGSTOP the worker at a moment it holds no write lock (its heartbeat writes
    briefly; a worker frozen inside a transaction would block everyone)."""
    for _ in range(100):
        worker.signal(signal.SIGSTOP)
        time.sleep(0.05)
        if write_lock_free(db_path):
            return
        worker.signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("could not freeze the worker outside a transaction")


# -- fencing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("stale_outcome", ["completed", "failed"])
def test_worker_frozen_past_its_lease_is_fenced(queue, db_path, tmp_path, pool, stale_outcome):
    job, started, release = hold_job(tmp_path, max_attempts=3)
    child = Job("child", jobs.add, params={"a": 1, "b": 2}, dependencies=[job.id])
    queue.submit(job)
    queue.submit(child)
    # The frozen worker's attempt returns normally, or raises (retry=True: it has attempts left).
    env = {FAIL_ENV: "1"} if stale_outcome == "failed" else None
    frozen = pool.spawn("frozen", lease=LEASE, poll=0.2, env=env)
    wait_until(lambda: lines(started), 30, what="the first worker runs the job")
    assert lines(started) == [str(frozen.pid)]
    stale_execution = job_row(db_path, job.id)["execution_id"]

    freeze(frozen, db_path)
    frozen_lease_end = lease_end(db_path, "frozen")
    wait_until(lambda: time.time() > frozen_lease_end + 0.1, 10, what="the lease runs out")
    open(release, "w").close()  # from now on every attempt returns at once

    rescuer = Worker(db_path, worker_id="rescuer", lease_timeout=LEASE)
    try:
        assert rescuer.process_one()  # reclaims the job, runs and completes it
        assert rescuer.process_one()  # the child, now ready
    finally:
        rescuer.close()
    assert lines(started) == [str(frozen.pid), str(os.getpid())]
    assert queue.get_result(job.id) == {"pid": os.getpid()}
    before_resume = all_job_rows(db_path)

    frozen.signal(signal.SIGCONT)  # the frozen attempt finishes and tries to write

    def stale_recorded():
        rows = queue.get_status(job.id)["executions"]
        return next((e for e in rows if e["id"] == stale_execution
                     and "stale:" in (e["error"] or "")), None)

    recorded = wait_until(stale_recorded, 30, what="the stale write recorded")
    assert all_job_rows(db_path) == before_resume  # the late write changed nothing
    assert queue.get_result(job.id) == {"pid": os.getpid()}
    assert queue.get_result(child.id) == 3  # not upstream_failed by the stale failure

    status = queue.get_status(job.id)
    assert status["status"] == "completed"
    assert status["attempts"] == 2  # the lost lease counted as an attempt
    executions = status["executions"]
    assert [(e["worker_id"], e["status"]) for e in executions] == [
        ("frozen", "lost"), ("rescuer", "completed")]
    assert status["execution_id"] == executions[1]["id"]  # the rescuer held the lease
    assert executions[1]["result"] == {"pid": os.getpid()}
    assert recorded["result"] is None
    assert "stopped renewing its lease" in recorded["error"]
    assert f"stale: attempt ended as {stale_outcome} after the job was reclaimed" \
        in recorded["error"]

    codes = pool.stop_all()
    assert codes == {"frozen": 0}
    assert "discarded" in frozen.output()  # the worker logged what it threw away


# -- leases after SIGKILL, and the worker registry ------------------------------------------
def execution_start(execution: dict) -> float:
    return datetime.fromisoformat(execution["started_at"]).timestamp()


def test_sigkilled_workers_job_is_reclaimed_after_the_lease_not_the_timeout(
        queue, db_path, tmp_path, pool):
    job, started, release = hold_job(tmp_path, timeout=300, max_attempts=3)
    queue.submit(job)
    doomed = pool.spawn("doomed", lease=LEASE, poll=0.2)
    wait_until(lambda: lines(started), 30, what="the doomed worker runs the job")
    # An idle worker with a long polling interval: only the lease's deadline wakes it.
    rescuer = pool.spawn("rescuer", lease=LEASE, poll=30)
    wait_until(lambda: rescuer.registered(db_path), 30, what="rescuer registered")
    stopped = pool.spawn("stopped", lease=LEASE, poll=30)
    wait_until(lambda: stopped.registered(db_path), 30, what="third worker registered")
    stopped.signal(signal.SIGTERM)
    assert stopped.wait(30) == 0

    killed_at = time.time()
    doomed.signal(signal.SIGKILL)
    doomed.wait(30)
    wait_until(lambda: len(lines(started)) == 2, 30, what="the job reclaimed")
    assert lines(started) == [str(doomed.pid), str(rescuer.pid)]

    executions = queue.get_status(job.id)["executions"]
    assert [(e["worker_id"], e["status"]) for e in executions] == [
        ("doomed", "lost"), ("rescuer", "running")]
    assert "stopped renewing its lease (presumed dead)" in executions[0]["error"]
    latency = execution_start(executions[1]) - killed_at
    print(f"\nFIGURE reclaim after SIGKILL: lease_timeout={LEASE}s timeout=300s "
          f"latency={latency:.2f}s")
    assert 0 < latency < LEASE + 2.0  # a lease period, not the 300 s timeout

    time.sleep(LEASE * 1.2)  # the dead worker's last heartbeat is now a lease old
    workers = {w["id"]: w for w in queue.list_workers()}
    assert workers["doomed"]["state"] == "dead"
    assert workers["doomed"]["running_jobs"] == 0
    assert workers["doomed"]["pid"] == doomed.pid
    assert workers["rescuer"]["state"] == "alive"  # kept alive by its heartbeat
    assert workers["rescuer"]["running_jobs"] == 1
    assert workers["stopped"]["state"] == "stopped"
    assert workers["stopped"]["running_jobs"] == 0

    open(release, "w").close()
    wait_until(lambda: queue.get_status(job.id)["status"] == "completed", 30)
    assert queue.get_result(job.id) == {"pid": rescuer.pid}
    assert queue.get_status(job.id)["attempts"] == 2


def test_heartbeat_keeps_a_long_jobs_lease(queue, db_path, tmp_path, pool):
    """A job running for several lease periods is not reclaimed while its worker lives,
    though another worker keeps checking for expired leases."""
    started = str(tmp_path / "started")
    job = Job("long", jobs.sleep_for, params={"seconds": 4 * LEASE, "started": started})
    queue.submit(job)
    runner = pool.spawn("runner", lease=LEASE, poll=0.2)
    wait_until(lambda: lines(started), 30, what="the job runs")
    pool.spawn("watcher", lease=LEASE, poll=0.1)  # keeps looking for expired leases
    wait_until(lambda: queue.get_status(job.id)["status"] == "completed", 60)
    executions = queue.get_status(job.id)["executions"]
    assert [(e["worker_id"], e["status"]) for e in executions] == [("runner", "completed")]
    assert lines(started) == [str(runner.pid)]
    assert pool.stop_all() == {"runner": 0, "watcher": 0}


# -- poison job ------------------------------------------------------------------------------
def test_poison_job_fails_after_exactly_max_attempts(queue, db_path, tmp_path, pool):
    started = str(tmp_path / "started")
    poison = Job("poison", jobs.die, params={"started": started}, max_attempts=3,
                 priority=10)
    others = [Job(f"ok{i}", jobs.add, params={"a": i, "b": 1}) for i in range(10)]
    for job in [poison, *others]:
        queue.submit(job)

    deaths, generation = [], 0
    worker = pool.spawn("w0", lease=LEASE, poll=0.2)
    began = time.monotonic()
    while queue.get_status(poison.id)["status"] not in ("failed", "completed"):
        assert time.monotonic() - began < 90, (queue.get_status(poison.id), pool.outputs())
        if not worker.alive():
            deaths.append(worker.proc.returncode)
            generation += 1
            worker = pool.spawn(f"w{generation}", lease=LEASE, poll=0.2)  # restart it
        time.sleep(0.02)
    wait_until(lambda: queue.stats()["completed"] == len(others), 30)
    assert pool.stop_all()[worker.name] == 0

    assert deaths == [1, 1, 1]  # the job killed its worker on each of its three attempts
    status = queue.get_status(poison.id)
    assert status["status"] == "failed"
    assert status["attempts"] == 3
    assert len(lines(started)) == 3
    assert [e["status"] for e in status["executions"]] == ["lost"] * 3
    assert "presumed dead" in status["error"]
    for job in others:  # unaffected: each ran once and completed
        other = queue.get_status(job.id)
        assert (other["status"], other["attempts"], len(other["executions"])) == (
            "completed", 1, 1)
    assert queue.stats()["pending"] == queue.stats()["running"] == 0


def test_an_outcome_the_database_refused_ends_at_the_deadline_not_never(queue, db_path,
                                                                        make_worker):
    """A completion that fails (a database error) leaves the attempt to the heartbeat,
    which times it out at its deadline; the retry completes the job."""
    from gigq_flow.errors import DatabaseError

    job_id = queue.submit(Job("refused once", jobs.identity, params={"value": 7}, timeout=1,
                              max_attempts=2))
    worker = make_worker(db_path, polling_interval=0.1)
    refusals = []

    def refuse_once(record, execution_id):  # a loop thread writes its completions in batches
        def refused(first, *rest, **options):
            if not refusals:
                refusals.append(execution_id(first))
                raise DatabaseError("disk I/O error (simulated)")
            return record(first, *rest, **options)
        return refused

    worker.store.complete = refuse_once(worker.store.complete, lambda claim: claim.execution_id)
    worker.store.complete_and_claim = refuse_once(worker.store.complete_and_claim,
                                                  lambda done: done[0][0].execution_id)
    worker.start_background()
    wait_until(lambda: queue.get_status(job_id)["status"] == "completed", timeout=20)
    executions = queue.get_status(job_id)["executions"]
    assert [e["status"] for e in executions] == ["timeout", "completed"]
    assert executions[0]["id"] == refusals[0]
    assert queue.get_result(job_id) == 7
