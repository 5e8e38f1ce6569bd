"""Cancelling running steps and timing them out, as a thread step sees it: its attempt
ends at once, check_cancelled() raises in it, whatever it returns is discarded."""

from __future__ import annotations

import pytest
from support import jobs
from support.helpers import drain, wait_until

from gigq_flow import Job, JobCancelled, Workflow, check_cancelled, current_job

pytestmark = pytest.mark.contract


def start(queue, db_path, make_worker, key, **options):
    job_id = queue.submit(Job("long", jobs.work_until_cancelled, params={"key": key},
                              **options))
    make_worker(db_path, polling_interval=0.1).start_background()
    assert jobs.event(f"{key}:started").wait(20)
    return job_id


def test_a_running_step_knows_itself_and_stops_when_cancelled(queue, db_path, make_worker):
    key = f"cancel-{id(queue)}"
    job_id = start(queue, db_path, make_worker, key)
    assert jobs.report(key) == (job_id, "long", 1)
    assert not queue.cancel(job_id)  # GigQ's meaning: pending jobs only
    assert queue.cancel(job_id, running=True)
    status = queue.get_status(job_id)  # ended at once, before the step noticed
    assert (status["status"], status["error"]) == ("cancelled", "cancelled while it ran")
    assert jobs.event(f"{key}:stopped").wait(5)  # the heartbeat tells it within a second
    assert isinstance(jobs.report(f"{key}:raised"), JobCancelled)
    assert "ended cancelled" in str(jobs.report(f"{key}:raised"))
    wait_until(lambda: queue.get_status(job_id)["status"] == "cancelled", timeout=5)
    assert [e["status"] for e in queue.get_status(job_id)["executions"]] == ["cancelled"]
    assert not queue.cancel(job_id, running=True)


def test_a_timed_out_step_is_told_too(queue, db_path, make_worker):
    key = f"timeout-{id(queue)}"
    job_id = start(queue, db_path, make_worker, key, timeout=1, max_attempts=1)
    assert jobs.event(f"{key}:stopped").wait(10)
    assert "ended timeout" in str(jobs.report(f"{key}:raised"))
    wait_until(lambda: queue.get_status(job_id)["status"] == "timeout", timeout=5)
    assert queue.get_status(job_id)["error"] == "Job timed out after 1 seconds"


def test_cancelling_a_run_ends_every_unfinished_step(queue, db_path, make_worker):
    key = f"run-{id(queue)}"
    wf = Workflow("to cancel")
    long = wf.add_task(jobs.work_until_cancelled, params={"key": key}, name="long")
    wf.add_task(jobs.noop, depends_on=[long], name="after")
    done = wf.add_task(jobs.identity, params={"value": 1}, name="quick", priority=10)
    run = wf.submit(queue)
    outside = queue.submit(Job("elsewhere", jobs.noop, dependencies=[long.id]))
    make_worker(db_path, polling_interval=0.1).start_background()
    assert jobs.event(f"{key}:started").wait(20)
    wait_until(lambda: queue.get_status(done.id)["status"] == "completed")

    assert run.cancel() == 2  # the running step and the pending one after it
    assert run.status()["tasks"] == {"long": "cancelled", "after": "cancelled",
                                     "quick": "completed"}
    assert queue.get_status(outside)["status"] == "upstream_failed"
    assert jobs.event(f"{key}:stopped").wait(5)
    assert run.cancel() == 0


def test_outside_a_step_there_is_no_job_and_nothing_to_check(queue, db_path, make_worker):
    assert current_job() is None
    check_cancelled()  # a no-op outside a step
    job_id = queue.submit(Job("quick", jobs.identity, params={"value": 3}))
    drain(make_worker(db_path))
    assert queue.get_result(job_id) == 3
