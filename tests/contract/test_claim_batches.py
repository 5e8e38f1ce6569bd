"""A worker thread claims quick steps in batches and writes their completions together; a
slow step makes its batch give back what it holds."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from support import jobs
from support.helpers import wait_until

from gigq_flow import Job, Workflow, claim_batch

pytestmark = pytest.mark.contract


def statuses(queue, job_ids):
    return [queue.get_status(job_id)["status"] for job_id in job_ids]


def test_quick_steps_are_claimed_and_completed_in_batches(queue, db_path, make_worker):
    values = [None if i % 3 == 0 else i for i in range(120)]  # None: stored as NULL
    job_ids = [queue.submit(Job(f"quick-{i}", jobs.identity, params={"value": value}))
               for i, value in enumerate(values)]
    worker = make_worker(db_path, polling_interval=0.05)
    writes = []
    write = worker.store.complete_and_claim

    def counted(done, worker_id, execution_ids, *rest, **options):
        writes.append((len(done), len(execution_ids)))
        return write(done, worker_id, execution_ids, *rest, **options)

    worker.store.complete_and_claim = counted
    worker.start_background()
    wait_until(lambda: set(statuses(queue, job_ids)) == {"completed"})
    assert [queue.get_result(job_id) for job_id in job_ids] == values
    assert sum(done for done, _ in writes) == 120  # every completion written once
    assert len(writes) <= 60  # several a transaction, the batch growing while steps are quick
    assert max(claims for _, claims in writes) > 1
    for job_id in job_ids:  # a job claimed in a batch is one attempt like any other
        status = queue.get_status(job_id)
        assert status["attempts"] == 1
        assert [e["status"] for e in status["executions"]] == ["completed"]


def test_a_slow_step_gives_back_its_batch(queue, db_path, make_worker, monkeypatch):
    """The completions kept before a slow step are written, and the jobs claimed after it
    return to the queue (no attempt counted), while it still runs."""
    monkeypatch.setattr(claim_batch, "QUICK_STEP", 60.0)  # every step counts as quick
    key = f"slow-{uuid.uuid4().hex}"
    before = [queue.submit(Job(f"before-{i}", jobs.noop, priority=10)) for i in range(20)]
    slow = queue.submit(Job("slow", jobs.block_until_released, params={"key": key},
                            priority=5))
    after = [queue.submit(Job(f"after-{i}", jobs.noop, priority=1)) for i in range(20)]
    worker = make_worker(db_path, polling_interval=0.05)
    worker.start_background()
    assert jobs.event(f"{key}:started").wait(20)
    held = {job_id for job_id in after if queue.get_status(job_id)["status"] == "running"}
    assert held  # claimed with the slow step, waiting behind it
    wait_until(lambda: {job["id"] for job in queue.list_jobs(status="running")} == {slow},
               timeout=10)
    assert set(statuses(queue, before)) == {"completed"}
    for job_id in held:
        status = queue.get_status(job_id)
        assert (status["status"], status["attempts"], status["executions"]) == (
            "pending", 0, [])
    jobs.event(f"{key}:release").set()
    wait_until(lambda: set(statuses(queue, [slow, *after])) == {"completed"})
    assert all(queue.get_status(job_id)["attempts"] == 1 for job_id in after)


def test_other_threads_leave_quick_steps_to_the_batching_thread(queue, db_path, make_worker,
                                                                monkeypatch):
    """Quick steps gain nothing from several threads, whose transactions would queue for
    the one writer: the worker's first thread takes them in batches, the others wait."""
    monkeypatch.setattr(claim_batch, "QUICK_STEP", 60.0)  # every step counts as quick
    job_ids = [queue.submit(Job(f"quick-{i}", jobs.identity, params={"value": i}))
               for i in range(400)]
    worker = make_worker(db_path, concurrency=4, polling_interval=0.05)
    worker.start_background()
    wait_until(lambda: set(statuses(queue, job_ids)) == {"completed"})
    by_thread: dict[str, int] = {}
    for job_id in job_ids:
        thread = queue.get_status(job_id)["worker_id"]
        by_thread[thread] = by_thread.get(thread, 0) + 1
    assert sum(by_thread.values()) == 400
    assert max(by_thread.values()) >= 300, by_thread  # one thread ran nearly all of them


def test_a_burst_of_quick_steps_starts_on_one_thread(queue, db_path, make_worker, monkeypatch):
    """The first thread to claim is on trial until its first step shows whether the steps
    are quick: the other threads do not each claim one step of the burst meanwhile."""
    monkeypatch.setattr(claim_batch, "QUICK_STEP", 60.0)  # every step counts as quick
    monkeypatch.setattr(claim_batch, "TRIAL", 60.0)  # the trial lasts until it is written
    worker = make_worker(db_path, concurrency=4, polling_interval=0.05)
    worker.start_background()
    workflow = Workflow("burst")
    for i in range(200):
        workflow.add_task(jobs.identity, params={"value": i}, name=f"quick-{i}")
    run = workflow.submit(queue)  # the threads are idle: all of them wake for it
    assert run.wait(timeout=30)
    threads = {queue.get_status(job.id)["worker_id"] for job in workflow.jobs}
    assert len(threads) == 1, threads


def test_slow_steps_start_on_every_thread_after_the_trial(queue, db_path, make_worker):
    """A trial lasts TRIAL seconds of its step: steps that take longer than that still
    start on every thread at once."""
    key = f"barrier-{uuid.uuid4()}"
    job_ids = [queue.submit(Job(f"meet-{i}", jobs.meet_at_barrier,
                                params={"key": key, "parties": 4}, max_attempts=1))
               for i in range(4)]
    worker = make_worker(db_path, worker_id="quad", concurrency=4, polling_interval=5)
    worker.start_background()
    wait_until(lambda: set(statuses(queue, job_ids)) <= {"completed", "failed"}, timeout=20)
    runs = [queue.get_status(job_id) for job_id in job_ids]
    assert [run["status"] for run in runs] == ["completed"] * 4, [run["error"] for run in runs]
    assert {run["worker_id"] for run in runs} == {f"quad-{i}" for i in range(4)}


def test_a_restarted_worker_claims_again(queue, db_path, make_worker, monkeypatch):
    monkeypatch.setattr(claim_batch, "QUICK_STEP", 60.0)
    worker = make_worker(db_path, concurrency=2, polling_interval=0.05)
    for round_ in range(2):
        job_ids = [queue.submit(Job(f"quick-{round_}-{i}", jobs.noop)) for i in range(50)]
        worker.start_background()
        wait_until(lambda ids=job_ids: set(statuses(queue, ids)) == {"completed"})
        worker.stop(wait=True)


def settle(store):
    """Return once no wake-up has come for 0.3 s: the submission's, in this process and
    (PostgreSQL) through the listener's NOTIFY a moment later, are over."""
    while True:
        since, began = store.watch(), time.monotonic()
        store.wait_for_work(0.3, since)
        if time.monotonic() - began >= 0.3:
            return


@pytest.mark.parametrize("leading", [False, True])
def test_a_leading_claim_of_all_it_asked_for_wakes_no_idle_thread(queue, db_path, make_worker,
                                                                  leading):
    """Taking every job it asked for leaves more ready: idle threads wake to take them,
    unless the caller leads, and they wait for it. Claiming none wakes them always."""
    store = make_worker(db_path).store
    store.watch()  # on PostgreSQL, starts the listener that hears the submission's NOTIFY
    workflow = Workflow("ready")
    for i in range(4):
        workflow.add_task(jobs.noop, name=f"ready-{i}")
    workflow.submit(queue)
    settle(store)
    since = store.watch(this_process=True)  # no connection: serves this process's wake-ups
    woken = threading.Event()
    waiter = threading.Thread(target=lambda: (
        store.wait_for_work(1.0, since, this_process=True), woken.set()))
    waiter.start()
    claimed = store.complete_and_claim([], "w", ["w-1", "w-2"], leading=leading)[1]
    assert len(claimed) == 2
    assert woken.wait(0.5) is not leading
    waiter.join()
    since = store.watch(this_process=True)
    waiter = threading.Thread(target=store.wait_for_work, args=(1.0, since),
                              kwargs={"this_process": True})
    began = time.monotonic()
    waiter.start()
    assert len(store.complete_and_claim([], "w", ["w-3", "w-4", "w-5"], leading=True)[1]) == 2
    waiter.join()  # fewer than asked: every ready job taken, nothing for another thread
    assert time.monotonic() - began > 0.8
    since = store.watch(this_process=True)
    waiter = threading.Thread(target=store.wait_for_work, args=(5.0, since),
                              kwargs={"this_process": True})
    began = time.monotonic()
    waiter.start()
    assert store.complete_and_claim([(claimed[0], None)], "w", ["w-6"], leading=True)[1] == []
    waiter.join()  # none claimed: the run may be over, or its completions freed others' jobs
    assert time.monotonic() - began < 2.5
