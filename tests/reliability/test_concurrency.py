"""Exactly one claimant per job across processes and threads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from support.db import sql
from support.helpers import subprocess_env, wait_until
from support.jobs import noop

from gigq_flow import Job, Worker

pytestmark = pytest.mark.contract

PROCESSES = 4
# Each PostgreSQL commit waits for the server's fsync: a smaller load keeps the suite quick.
JOBS_PER_PROCESS = {"sqlite": 2_000, "postgres": 500}

DRAIN_SCRIPT = """
import os, sys, time
from gigq_flow import JobQueue, Worker

db, ready, go, index = sys.argv[1:5]
worker = Worker(db, worker_id=f"proc-{index}", polling_interval=0.05)
queue = JobQueue(db)
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):  # start all processes together
    if time.monotonic() > deadline:
        sys.exit("never got the go signal")
    time.sleep(0.005)
ran = 0
while True:
    if worker.process_one():
        ran += 1
        continue
    stats = queue.stats()
    if stats["pending"] == 0 and stats["running"] == 0:
        break
    time.sleep(0.005)
print("ran", ran, flush=True)
"""


def test_processes_run_each_job_exactly_once(queue, db_path, tmp_path, backend):
    total = PROCESSES * JOBS_PER_PROCESS[backend]
    ids = {queue.submit(Job("noop", noop)) for _ in range(total)}
    assert len(ids) == total

    script = tmp_path / "drain.py"
    script.write_text(textwrap.dedent(DRAIN_SCRIPT))
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(PROCESSES)]
    procs = [
        subprocess.Popen([sys.executable, str(script), str(db_path), str(ready[i]), str(go),
                          str(i)],
                         env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for i in range(PROCESSES)
    ]
    try:
        wait_until(lambda: all(r.exists() for r in ready), timeout=60)
        go.touch()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    ran = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in out + err
        assert "Traceback" not in err, err
        ran.append(int(out.split()[-1]))
    assert sum(ran) == total
    assert all(count > 0 for count in ran), ran  # every process took part

    per_job = dict(sql(db_path, "SELECT job_id, COUNT(*) FROM job_executions GROUP BY job_id"))
    assert set(per_job) == ids
    assert set(per_job.values()) == {1}
    assert sql(db_path, "SELECT status, COUNT(*) FROM job_executions GROUP BY status") == [
        ("completed", total)]
    assert sql(db_path, "SELECT status, attempts, COUNT(*) FROM jobs "
                        "GROUP BY status, attempts") == [("completed", 1, total)]
    workers = {row[0] for row in sql(db_path, "SELECT DISTINCT worker_id FROM job_executions")}
    assert workers == {f"proc-{i}" for i in range(PROCESSES)}
    assert queue.stats()["completed"] == total


def test_threads_racing_for_claims_get_distinct_jobs(queue, db_path):
    """Many threads claim at the same instant (behind a barrier): one claimant per job."""
    threads_count, jobs = 8, 400
    ids = {queue.submit(Job("noop", noop)) for _ in range(jobs)}
    barrier = threading.Barrier(threads_count)
    counts = [0] * threads_count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        worker = Worker(db_path, worker_id=f"t-{index}")
        try:
            barrier.wait(10)
            while worker.process_one():
                counts[index] += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            worker.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(counts) == jobs
    per_job = dict(sql(db_path, "SELECT job_id, COUNT(*) FROM job_executions GROUP BY job_id"))
    assert set(per_job) == ids and set(per_job.values()) == {1}
