"""Chaos and exactly-once claims: real worker processes, SIGKILLed while they work.

The suite runs scaled-down versions (bounded in time on two cores); the full-size
workloads run with ``GIGQ_FLOW_SOAK=1``:

    GIGQ_FLOW_SOAK=1 python -m pytest tests/reliability/test_chaos.py -s

Each test prints a ``FIGURE`` line (run with ``-s`` to see it); docs/reliability.md
quotes them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from datetime import datetime

import pytest
from support.db import is_postgres, rows
from support.helpers import lines, wait_until
from support.jobs import noop, work, work_after_parents
from support.processes import WorkerPool

from gigq_flow import Job, JobQueue, Workflow
from gigq_flow.codec import to_new_job

pytestmark = pytest.mark.contract

SOAK = bool(os.environ.get("GIGQ_FLOW_SOAK"))
soak = pytest.mark.skipif(not SOAK, reason="long soak: set GIGQ_FLOW_SOAK=1 to run it")

CHAOS_MAX_ATTEMPTS = 20  # a job is lost once per kill that lands on it; never let that fail it


def integrity(db_path) -> str:
    """SQLite's check of the file (a server checks its own storage)."""
    return "ok" if is_postgres(db_path) else rows(db_path, "PRAGMA integrity_check")[0][0]


# -- chaos ---------------------------------------------------------------------------------
def submit_chaos_workload(queue: JobQueue, tmp_path, rng: random.Random, *, jobs: int,
                          dag_size: int, ms: tuple[float, float]) -> tuple[list[str], list]:
    """Independent jobs plus a random DAG (each node 0-3 parents among the 12 before
    it, so chains run deep); returns the DAG edges (parent id, child id)."""
    independent = [
        Job(f"w{i}", work, params={"key": f"w{i}", "ms": rng.uniform(*ms)},
            max_attempts=CHAOS_MAX_ATTEMPTS)
        for i in range(jobs - dag_size)
    ]
    queue.store.submit([to_new_job(job) for job in independent])
    workflow = Workflow("chaos-dag")
    nodes: list[Job] = []
    for i in range(dag_size):
        recent = nodes[-12:]
        parents = rng.sample(recent, k=min(len(recent), rng.randint(0, 3)))
        nodes.append(workflow.add_task(
            work_after_parents, name=f"d{i}", priority=1, max_attempts=CHAOS_MAX_ATTEMPTS,
            params={"key": f"d{i}", "ms": rng.uniform(*ms),
                    "parents": [p.name for p in parents],
                    "violations": str(tmp_path / "violations")},
            depends_on=parents,
        ))
    workflow.submit(queue)
    edges = [(parent, job.id) for job in nodes for parent in job.dependencies]
    return [job.id for job in independent + nodes], edges


def run_chaos(db_path, tmp_path, pool: WorkerPool, *, jobs: int, dag_size: int,
              ms: tuple[float, float], kill_every: float, deadline: float, seed: int) -> dict:
    rng = random.Random(seed)
    queue = JobQueue(db_path)
    job_ids, edges = submit_chaos_workload(queue, tmp_path, rng, jobs=jobs, dag_size=dag_size,
                                           ms=ms)
    options = {"lease": 1, "grace": 1, "poll": 0.5}
    generation = Counter()
    slots = [pool.spawn(f"w{slot}-0", **options) for slot in range(4)]
    killed: set[str] = set()
    began = time.monotonic()
    next_kill = began + kill_every
    while queue.stats()["completed"] < len(job_ids):
        now = time.monotonic()
        assert now - began < deadline, (
            f"not done after {deadline} s: {queue.stats()}\n{pool.outputs()[-5000:]}")
        for worker in slots:
            assert worker.alive(), f"{worker.name} died on its own:\n{worker.output()[-3000:]}"
        if now >= next_kill:
            slot = rng.randrange(len(slots))
            victim = slots[slot]
            victim.signal(signal.SIGKILL)
            victim.wait(30)
            killed.add(victim.worker_id)
            generation[slot] += 1
            slots[slot] = pool.spawn(f"w{slot}-{generation[slot]}", **options)
            next_kill += kill_every
        time.sleep(0.02)
    duration = time.monotonic() - began
    codes = pool.stop_all()
    assert all(codes[w.name] == 0 for w in slots), (codes, pool.outputs()[-5000:])
    queue.close()
    return {"job_ids": job_ids, "edges": edges, "kills": len(killed), "killed": killed,
            "duration": duration}


def check_chaos_outcome(db_path, tmp_path, run: dict) -> dict:
    assert integrity(db_path) == "ok"
    counts = dict(rows(db_path, "SELECT status, COUNT(*) FROM jobs GROUP BY status"))
    assert counts == {"completed": len(run["job_ids"])}  # nothing running, pending or failed

    jobs = {row["id"]: row for row in rows(db_path, "SELECT * FROM jobs")}
    pids = {row["id"]: row["pid"] for row in rows(db_path, "SELECT id, pid FROM workers")}
    executions: dict[str, list] = defaultdict(list)
    for row in rows(db_path, "SELECT * FROM job_executions ORDER BY started_at, id"):
        executions[row["job_id"]].append(row)

    statuses = Counter()
    for job_id in run["job_ids"]:
        job, attempts = jobs[job_id], executions[job_id]
        statuses.update(e["status"] for e in attempts)
        completed = [e for e in attempts if e["status"] == "completed"]
        assert len(completed) == 1, (job["name"], [dict(e) for e in attempts])
        winner = completed[0]
        # The result on the job is the one written by the attempt that held the lease.
        assert job["execution_id"] == winner["id"]
        assert job["result"] == winner["result"]
        result = json.loads(job["result"])
        assert result["key"] == job["name"]
        assert result["pid"] == pids[winner["worker_id"]]
        # Every other attempt was lost with its worker; each one counted.
        assert {e["status"] for e in attempts} <= {"completed", "lost"}
        assert job["attempts"] == len(attempts)

    # No child started before all its parents completed: the jobs checked their
    # parents' results when they started, and the execution rows agree.
    assert lines(tmp_path / "violations") == []
    parent_done = {job_id: datetime.fromisoformat(jobs[job_id]["completed_at"])
                   for job_id in run["job_ids"]}
    early = [
        (jobs[parent]["name"], jobs[child]["name"])
        for parent, child in run["edges"]
        for e in executions[child]
        if datetime.fromisoformat(e["started_at"]) < parent_done[parent]
    ]
    assert early == []

    lost_live = [e for attempts in executions.values() for e in attempts
                 if e["status"] == "lost" and e["worker_id"] not in run["killed"]]
    return {"executions": sum(statuses.values()), "lost": statuses["lost"],
            "lost_from_live_workers": len(lost_live),
            "stale": sum("stale" in (e["error"] or "") for a in executions.values() for e in a)}


def chaos(db_path, tmp_path, pool, **workload) -> None:
    run = run_chaos(db_path, tmp_path, pool, **workload)
    figures = check_chaos_outcome(db_path, tmp_path, run)
    assert run["kills"] >= 3
    print(f"\nFIGURE chaos: jobs={workload['jobs']} dag={workload['dag_size']} "
          f"ms={workload['ms']} workers=4 kills={run['kills']} duration={run['duration']:.1f}s "
          f"executions={figures['executions']} lost={figures['lost']} "
          f"lost_from_live_workers={figures['lost_from_live_workers']} "
          f"stale_writes={figures['stale']}")


def test_chaos_sigkill_every_half_second(db_path, tmp_path, pool):
    chaos(db_path, tmp_path, pool, jobs=1000, dag_size=100, ms=(5, 25), kill_every=0.5,
          deadline=150, seed=7)


@soak
@pytest.mark.timeout(1800)
def test_chaos_soak_2000_jobs(db_path, tmp_path, pool):
    chaos(db_path, tmp_path, pool, jobs=2000, dag_size=200, ms=(10, 100), kill_every=0.5,
          deadline=1500, seed=2000)


# -- exactly-once claims ---------------------------------------------------------------------
def exactly_once(db_path, tmp_path, pool, *, processes: int, jobs: int, deadline: float) -> None:
    queue = JobQueue(db_path)
    queue.store.submit([to_new_job(Job(f"n{i}", noop)) for i in range(jobs)])
    go = tmp_path / "go"
    workers = [pool.spawn(f"p{i}", lease=5, poll=0.5, go=go) for i in range(processes)]
    wait_until(lambda: all(w.ready() or not w.alive() for w in workers) or None,
                        timeout=60, what="workers ready")
    began = time.monotonic()
    go.touch()  # all race for the same ready jobs from here
    while queue.stats()["completed"] < jobs:
        assert time.monotonic() - began < deadline, (queue.stats(), pool.outputs()[-5000:])
        assert all(w.alive() for w in workers), pool.outputs()[-5000:]
        time.sleep(0.05)
    duration = time.monotonic() - began
    codes = pool.stop_all()
    output = pool.outputs()
    assert set(codes.values()) == {0}, output[-5000:]
    assert "locked" not in output
    assert "Traceback" not in output

    assert integrity(db_path) == "ok"
    per_job = rows(db_path, "SELECT job_id, COUNT(*), "
                            "SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) "
                            "FROM job_executions GROUP BY job_id")
    assert len(per_job) == jobs
    assert {(n, done) for _, n, done in per_job} == {(1, 1)}  # each executed exactly once
    assert dict(rows(db_path, "SELECT status, COUNT(*) FROM jobs GROUP BY status")) == {
        "completed": jobs}
    share = sorted(n for _, n in rows(db_path, "SELECT worker_id, COUNT(*) FROM job_executions "
                                               "GROUP BY worker_id"))
    print(f"\nFIGURE exactly-once: processes={processes} jobs={jobs} duration={duration:.1f}s "
          f"rate={jobs / duration:.0f} jobs/s claims_per_process={share}")


def test_exactly_once_claims_8_processes(db_path, tmp_path, pool):
    exactly_once(db_path, tmp_path, pool, processes=8, jobs=2000, deadline=120)


@soak
@pytest.mark.timeout(1800)
def test_exactly_once_claims_soak_10000(db_path, tmp_path, pool):
    exactly_once(db_path, tmp_path, pool, processes=8, jobs=10_000, deadline=1500)
