"""A Hypothesis state machine drives the SQLite store against a model of the job lifecycle.

Rules: submit small DAGs, claim, heartbeat, complete and fail (with live or stale
claims), a worker's lease lapsing (its heartbeat moved into the past in the file) and a
timeout, kill (a worker forgets its claim), release, cancel and requeue.

Invariants, checked after every step against the file itself and against the model:
- at most one live attempt per job: one 'running' attempt exactly when the job runs,
  and it is the attempt the job's fencing token names;
- terminal states stay terminal except through requeue; attempts only grow except
  through requeue and release;
- a result comes only from the current lease: a stale claim's complete/fail returns
  False and leaves the jobs table as it was; the stored result names its execution;
- upstream_failed is exactly the set of jobs that were pending when an ancestor ended
  failed, timed out or was cancelled (the model computes it; the file is also checked
  on its own: upstream_failed <=> a failed ancestor, for every job not itself failed).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from support.db import sql

from gigq_flow.store import ClaimedJob, NewJob, new_instance
from gigq_flow.store.sqlite import SQLiteStore

FINAL = {"failed", "timeout", "cancelled"}
TERMINAL = FINAL | {"completed", "upstream_failed"}
LEASE = 600.0  # leases lapse only when a rule says so
WORKERS = ("w0", "w1", "w2")
INDEX = st.integers(min_value=0, max_value=10_000)


@dataclass
class ModelJob:
    id: str
    order: int
    priority: int
    parents: tuple[str, ...]
    max_attempts: int
    status: str = "pending"
    attempts: int = 0
    execution: str | None = None
    result: str | None = None
    children: list[str] = field(default_factory=list)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="gigq-flow-sm-")
        self.path = f"{self.dir}/q.db"
        self.store = SQLiteStore(self.path)
        self.jobs: dict[str, ModelJob] = {}
        self.claims: list[ClaimedJob] = []  # every claim ever made, in order
        self.live: set[str] = set()  # execution ids whose worker still holds the claim
        self.forgotten: set[str] = set()  # execution ids of killed workers
        self.resettable: set[str] = set()  # jobs the last rule may move back / down
        self.previous: dict[str, tuple[str, int]] = {}
        self.seq = 0
        self.instances: dict[str, str] = {}  # model worker -> its registered instance
        for worker in WORKERS:
            self.start_worker(worker)

    def start_worker(self, worker: str) -> None:
        self.instances[worker] = new_instance()
        self.store.register_worker(self.instances[worker], worker, 1, LEASE)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------------
    def sql(self, statement: str, args: tuple = ()) -> list[tuple]:
        return sql(self.path, statement, args)

    def jobs_table(self) -> list[tuple]:
        return self.sql("SELECT * FROM jobs ORDER BY id")

    def current(self, claim: ClaimedJob) -> bool:
        job = self.jobs[claim.id]
        return job.status == "running" and job.execution == claim.execution_id

    def descendants(self, job_id: str) -> list[str]:
        seen: list[str] = []
        stack = list(self.jobs[job_id].children)
        while stack:
            child = stack.pop()
            if child not in seen:
                seen.append(child)
                stack.extend(self.jobs[child].children)
        return sorted(seen, key=lambda j: self.jobs[j].order)

    def blocked(self, job: ModelJob) -> bool:
        """A parent ended badly: the job can never run."""
        return any(self.jobs[p].status in FINAL | {"upstream_failed"} for p in job.parents)

    def propagate(self, job_id: str) -> None:
        for child in self.descendants(job_id):
            if self.jobs[child].status == "pending":
                self.jobs[child].status = "upstream_failed"
                event("upstream_failed")

    def end_attempt(self, job: ModelJob, status: str) -> None:
        job.status, job.execution = status, None
        if status in FINAL:
            self.propagate(job.id)

    def pick_claim(self, index: int) -> ClaimedJob | None:
        """Any claim but one whose worker was killed while it still holds the job."""
        usable = [c for c in self.claims
                  if c.execution_id not in self.forgotten or not self.current(c)]
        return usable[index % len(usable)] if usable else None

    def pick_job(self, index: int, statuses: set[str] | None = None) -> ModelJob | None:
        pool = [j for j in self.jobs.values() if statuses is None or j.status in statuses]
        return sorted(pool, key=lambda j: j.order)[index % len(pool)] if pool else None

    # -- rules ------------------------------------------------------------------------------------
    @initialize(data=st.data(), size=st.integers(min_value=3, max_value=8))
    def first_dag(self, data, size: int) -> None:
        self.submit(data, size)

    @rule(data=st.data(), size=st.integers(min_value=1, max_value=4))
    def submit(self, data, size: int) -> None:
        existing = sorted(self.jobs, key=lambda j: self.jobs[j].order)
        new: list[NewJob] = []
        for _ in range(size):
            candidates = existing + [job.id for job in new]
            picks = data.draw(st.lists(st.integers(0, max(len(candidates) - 1, 0)),
                                       max_size=3 if candidates else 0, unique=True))
            self.seq += 1
            new.append(NewJob(
                id=f"job{self.seq:03d}", name=f"job{self.seq:03d}", function_module="support.jobs",
                function_name="noop", params="{}", priority=data.draw(st.integers(0, 1)),
                dependencies=tuple(candidates[i] for i in picks),
                max_attempts=data.draw(st.integers(1, 3)), timeout=300.0, description="",
                created_at=f"2024-01-01T00:00:00.{self.seq:06d}", pass_parent_results=None,
                retry_delay=0.0, serializer="json",
            ))
        self.store.submit(new)
        for job in new:
            order = int(job.id.removeprefix("job"))  # submission order, parents first
            model = ModelJob(job.id, order, job.priority, job.dependencies, job.max_attempts)
            self.jobs[job.id] = model
            for parent in job.dependencies:
                self.jobs[parent].children.append(job.id)
            if self.blocked(model):
                model.status = "upstream_failed"

    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker: str) -> None:
        ready = [j for j in self.jobs.values() if j.status == "pending"
                 and all(self.jobs[p].status == "completed" for p in j.parents)]
        expected = min(ready, key=lambda j: (-j.priority, j.order)) if ready else None
        self.seq += 1
        claim = self.store.claim(worker, f"{self.instances[worker]}-{self.seq}")
        if expected is None:
            assert claim is None
            return
        assert claim is not None and claim.id == expected.id  # the best ready job, only it
        assert claim.attempts == expected.attempts + 1
        expected.status, expected.execution = "running", claim.execution_id
        expected.attempts += 1
        self.claims.append(claim)
        self.live.add(claim.execution_id)

    @rule(worker=st.sampled_from(WORKERS))
    def heartbeat(self, worker: str) -> None:
        before = self.jobs_table()
        self.store.heartbeat(self.instances[worker])
        assert self.jobs_table() == before  # a lease is the worker's: no job row is written

    @rule(index=INDEX)
    def complete(self, index: int) -> None:
        claim = self.pick_claim(index)
        if claim is None:
            return
        current, before = self.current(claim), self.jobs_table()
        result = json.dumps({"by": claim.execution_id})
        assert self.store.complete(claim, result) == current
        self.live.discard(claim.execution_id)
        if current:
            job = self.jobs[claim.id]
            job.status, job.result = "completed", result
        else:
            event("stale complete")
            assert self.jobs_table() == before  # fenced: nothing changed
            self.assert_recorded_stale(claim, "completed")

    @rule(index=INDEX, retry=st.booleans())
    def fail(self, index: int, retry: bool) -> None:
        claim = self.pick_claim(index)
        if claim is None:
            return
        current, before = self.current(claim), self.jobs_table()
        assert self.store.fail(claim, "RuntimeError: boom", retry=retry) == current
        self.live.discard(claim.execution_id)
        if current:
            self.end_attempt(self.jobs[claim.id], "pending" if retry else "failed")
        else:
            event("stale fail")
            assert self.jobs_table() == before
            self.assert_recorded_stale(claim, "failed")

    def assert_recorded_stale(self, claim: ClaimedJob, outcome: str) -> None:
        archived = self.sql("SELECT error FROM ended_attempts WHERE id = ?", (claim.execution_id,))
        if archived:  # the attempt was ended by someone else
            assert f"stale: attempt ended as {outcome}" in archived[0][0]
        else:  # the job row still holds it, as its own worker ended it
            assert self.sql("SELECT status FROM jobs WHERE execution_id = ?",
                            (claim.execution_id,))[0][0] in ("completed", "failed")

    @rule(index=INDEX)
    def lose_worker(self, index: int) -> None:
        """A worker stops renewing its lease: every job it runs is reclaimed."""
        job = self.pick_job(index, {"running"})
        if job is None:
            return
        worker = next(c.worker_id for c in self.claims if c.execution_id == job.execution)
        held = [j for j in self.jobs.values()
                if j.status == "running" and j.execution.startswith(self.instances[worker])]
        self.sql("UPDATE workers SET last_heartbeat = 1 WHERE instance = ?",
                 (self.instances[worker],))
        assert self.store.reclaim_lost() == len(held)
        for lost in held:
            execution = lost.execution
            self.end_attempt(lost, "pending" if lost.attempts < lost.max_attempts else "failed")
            [(status,)] = self.sql("SELECT status FROM ended_attempts WHERE id = ?", (execution,))
            assert status == "lost"
        self.start_worker(worker)  # it comes back as a new process

    @rule(index=INDEX)
    def time_out(self, index: int) -> None:
        """A job overruns its timeout: its worker ends the attempt."""
        job = self.pick_job(index, {"running"})
        if job is None:
            return
        claim = next(c for c in self.claims if c.execution_id == job.execution)
        assert self.store.time_out(claim)
        execution = job.execution
        self.end_attempt(job, "pending" if job.attempts < job.max_attempts else "timeout")
        [(status,)] = self.sql("SELECT status FROM ended_attempts WHERE id = ?", (execution,))
        assert status == "timeout"

    @rule(index=INDEX)
    def kill(self, index: int) -> None:
        """A worker dies: its claim is forgotten, its job stays running until expiry."""
        live = sorted(self.live)
        if live:
            execution = live[index % len(live)]
            self.live.discard(execution)
            self.forgotten.add(execution)

    @rule(index=INDEX)
    def release(self, index: int) -> None:
        live = [c for c in self.claims if c.execution_id in self.live]
        if not live:
            return
        claim = live[index % len(live)]
        current, before = self.current(claim), self.jobs_table()
        assert self.store.release([claim]) == current  # a stopping worker gives its job back
        self.live.discard(claim.execution_id)
        if not current:
            event("stale release")
            assert self.jobs_table() == before
            return
        job = self.jobs[claim.id]
        job.status, job.execution, job.attempts = "pending", None, max(job.attempts - 1, 0)
        self.resettable.add(job.id)

    @rule(index=INDEX, any_job=st.booleans())
    def cancel(self, index: int, any_job: bool) -> None:
        job = self.pick_job(index, None if any_job else {"pending"})
        if job is None:
            return
        expected = job.status == "pending"
        assert self.store.cancel(job.id) == expected
        if expected:
            self.end_attempt(job, "cancelled")

    @rule(index=INDEX, any_job=st.booleans())
    def requeue(self, index: int, any_job: bool) -> None:
        job = self.pick_job(index, None if any_job else FINAL)
        if job is None:
            return
        if job.status in FINAL and self.blocked(job):
            # Requeueing a job whose own parent ended badly is a known bug (see
            # test_requeue_of_a_job_whose_parent_failed_meanwhile): not driven here.
            event("requeue of a blocked job skipped")
            return
        expected = job.status in FINAL
        assert self.store.requeue(job.id) == expected
        if not expected:
            return
        event("requeue")
        if self.descendants(job.id):
            event("requeue with descendants")
        job.status, job.attempts, job.execution = "pending", 0, None
        self.resettable.add(job.id)
        restored = [d for d in self.descendants(job.id)
                    if self.jobs[d].status == "upstream_failed"]
        for child in restored:
            self.jobs[child].status = "pending"
            self.resettable.add(child)
        for child in restored:  # in submission order: parents first
            if self.blocked(self.jobs[child]):
                self.jobs[child].status = "upstream_failed"

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def file_matches_model(self) -> None:
        rows = {row[0]: row for row in self.sql(
            "SELECT id, status, attempts, execution_id, result, pending_deps FROM jobs")}
        executions: dict[str, list[tuple]] = {}
        for row in self.sql("SELECT job_id, id, status, result FROM job_executions"):
            executions.setdefault(row[0], []).append(row[1:])
        assert set(rows) == set(self.jobs)
        for job in self.jobs.values():
            _, status, attempts, execution_id, result, pending_deps = rows[job.id]
            assert (status, attempts) == (job.status, job.attempts), job
            running = [e for e in executions.get(job.id, []) if e[1] == "running"]
            completed = [e for e in executions.get(job.id, []) if e[1] == "completed"]
            # One live attempt at most, and it is the one the job's fencing token names.
            assert len(running) == (status == "running")
            if status == "running":
                assert running[0][0] == execution_id == job.execution
            if status == "completed":
                # The result came from the lease that completed it, and only from it.
                assert result == job.result
                assert len(completed) == 1 and completed[0][0] == execution_id
                assert completed[0][2] == result
                assert json.loads(result)["by"] == execution_id
            else:
                assert not completed
            if status == "pending":
                assert pending_deps == sum(
                    self.jobs[p].status != "completed" for p in job.parents)

    @invariant()
    def upstream_failed_is_exactly_the_blocked_jobs(self) -> None:
        status = dict(self.sql("SELECT id, status FROM jobs"))
        parents: dict[str, list[str]] = {}
        for child, parent in self.sql("SELECT job_id, depends_on FROM job_dependencies"):
            parents.setdefault(child, []).append(parent)
        memo: dict[str, bool] = {}

        def failed_ancestor(job_id: str) -> bool:
            if job_id not in memo:
                memo[job_id] = any(status[p] in FINAL or failed_ancestor(p)
                                   for p in parents.get(job_id, []))
            return memo[job_id]

        for job_id, state in status.items():
            if state == "upstream_failed":
                assert failed_ancestor(job_id), job_id
            elif failed_ancestor(job_id):
                assert state in FINAL, (job_id, state)

    @invariant()
    def transitions_are_allowed(self) -> None:
        now = {row[0]: (row[1], row[2])
               for row in self.sql("SELECT id, status, attempts FROM jobs")}
        for job_id, (status, attempts) in self.previous.items():
            new_status, new_attempts = now[job_id]
            if job_id in self.resettable:
                continue
            if status in TERMINAL:
                assert new_status == status, (job_id, status, new_status)
            assert new_attempts >= attempts, (job_id, attempts, new_attempts)
        self.previous, self.resettable = now, set()


SOAK = bool(os.environ.get("GIGQ_FLOW_SOAK"))  # the soak run explores much further
StoreMachine.TestCase.settings = settings(
    max_examples=1000 if SOAK else 30, stateful_step_count=50 if SOAK else 30,
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStoreMachine = StoreMachine.TestCase
