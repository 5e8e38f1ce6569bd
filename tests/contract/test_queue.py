"""JobQueue: claim order, retries, cancel, requeue, clear_completed, stats, listing, status."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from support import jobs
from support.helpers import drain, lines, status_of

from gigq_flow import Job, JobQueue, JobStatus, Workflow, clock

pytestmark = pytest.mark.contract

GIGQ_JOB_KEYS = {
    "id", "name", "function_name", "function_module", "params", "priority", "dependencies",
    "max_attempts", "timeout", "description", "status", "created_at", "updated_at", "attempts",
    "result", "error", "started_at", "completed_at", "worker_id", "pass_parent_results",
    "retry_delay", "retry_after",
}
GIGQ_FLOW_JOB_KEYS = {"workflow_id", "pending_deps", "execution_id", "serializer", "cache",
                      "cache_version", "result_digest", "cache_note", "cached_from",
                      "traceback", "code_digest", "map_param", "map_size", "map_of",
                      "map_index", "map_limit", "tags", "gate"}
EXECUTION_KEYS = {
    "id", "job_id", "worker_id", "status", "started_at", "completed_at", "result", "error",
    "traceback",
}
ALL_STATUSES = {s.value for s in JobStatus}


# -- claim order --------------------------------------------------------------------------
def test_claims_by_priority_then_fifo(queue, db_path, tmp_path, make_worker):
    log = tmp_path / "calls.log"
    plan = [("low-1", 0), ("high-1", 10), ("mid-1", 5), ("low-2", 0), ("high-2", 10),
            ("neg", -3), ("mid-2", 5), ("low-3", 0)]
    for label, priority in plan:
        queue.submit(Job(label, jobs.record_call,
                         params={"log_path": str(log), "label": label}, priority=priority))

    assert drain(make_worker(db_path)) == len(plan)
    assert lines(log) == ["high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2", "low-3", "neg"]


def test_fifo_among_many_equal_priority_jobs(queue, db_path, tmp_path, make_worker):
    log = tmp_path / "calls.log"
    labels = [f"job-{i:03d}" for i in range(60)]
    for label in labels:
        queue.submit(Job(label, jobs.record_call, params={"log_path": str(log), "label": label}))
    drain(make_worker(db_path))
    assert lines(log) == labels


def test_process_one_returns_false_on_empty_queue(queue, db_path, make_worker):
    assert make_worker(db_path).process_one() is False


# -- retries --------------------------------------------------------------------------------
def test_retry_waits_for_retry_delay(queue, db_path, tmp_path, make_worker):
    counter = tmp_path / "counter"
    job_id = queue.submit(Job("flaky", jobs.fail_n_times, max_attempts=3, retry_delay=1,
                              params={"counter_path": str(counter), "n": 1, "value": "finally"}))
    worker = make_worker(db_path)

    assert worker.process_one() is True  # attempt 1 fails
    failed_at = time.monotonic()
    status = queue.get_status(job_id)
    assert status["status"] == "pending"
    assert status["attempts"] == 1
    assert "planned failure 1 of 1" in status["error"]
    assert status["retry_after"] is not None

    # Not claimable before the delay...
    assert worker.process_one() is False
    assert status_of(queue, job_id) == "pending"

    # ...and claimed once it has passed.
    deadline = time.monotonic() + 5
    while not worker.process_one():
        assert time.monotonic() < deadline, "retry never became claimable"
        time.sleep(0.02)
    waited = time.monotonic() - failed_at
    assert 0.9 <= waited < 3.0

    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"], status["result"]) == ("completed", 2, "finally")
    assert status["error"] is None
    assert [e["status"] for e in status["executions"]] == ["failed", "completed"]


def test_retry_without_delay_is_immediate(queue, db_path, tmp_path, make_worker):
    counter = tmp_path / "counter"
    job_id = queue.submit(Job("flaky", jobs.fail_n_times, max_attempts=3,
                              params={"counter_path": str(counter), "n": 2}))
    assert drain(make_worker(db_path)) == 3
    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"], status["result"]) == ("completed", 3, "ok")


def test_max_attempts_then_failed(queue, db_path, make_worker):
    job_id = queue.submit(Job("doomed", jobs.fail, params={"message": "kaput"},
                              max_attempts=2))
    worker = make_worker(db_path, worker_id="w-fail")
    assert worker.process_one() is True
    assert status_of(queue, job_id) == "pending"
    assert worker.process_one() is True
    assert worker.process_one() is False  # no third attempt

    status = queue.get_status(job_id)
    assert status["status"] == "failed"
    assert status["attempts"] == 2
    assert "RuntimeError" in status["error"] and "kaput" in status["error"]
    assert status["completed_at"] is not None
    assert queue.get_result(job_id) is None
    executions = status["executions"]
    assert [e["status"] for e in executions] == ["failed", "failed"]
    assert all("kaput" in e["error"] for e in executions)


def test_executions_one_per_attempt_oldest_first(queue, db_path, tmp_path, make_worker):
    counter = tmp_path / "counter"
    job_id = queue.submit(Job("flaky", jobs.fail_n_times, max_attempts=3,
                              params={"counter_path": str(counter), "n": 2, "value": [1, "x"]}))
    drain(make_worker(db_path, worker_id="exec-worker"))

    executions = queue.get_status(job_id)["executions"]
    assert len(executions) == 3
    for execution in executions:
        assert set(execution) == EXECUTION_KEYS
        assert execution["job_id"] == job_id
        assert execution["worker_id"] == "exec-worker"
        assert execution["started_at"] <= execution["completed_at"]
    assert len({e["id"] for e in executions}) == 3
    started = [e["started_at"] for e in executions]
    assert started == sorted(started)
    assert [e["status"] for e in executions] == ["failed", "failed", "completed"]
    assert ["planned failure 1" in (executions[0]["error"] or ""),
            "planned failure 2" in (executions[1]["error"] or ""),
            executions[2]["error"]] == [True, True, None]
    assert [e["result"] for e in executions] == [None, None, [1, "x"]]


# -- cancel ---------------------------------------------------------------------------------
def test_cancel_pending_job(queue, db_path, make_worker):
    job_id = queue.submit(Job("c", jobs.noop))
    assert queue.cancel(job_id) is True
    assert status_of(queue, job_id) == "cancelled"
    assert queue.cancel(job_id) is False  # already cancelled
    assert make_worker(db_path).process_one() is False  # a cancelled job is never claimed
    assert queue.get_status(job_id)["executions"] == []


def test_cancel_refuses_completed_failed_and_unknown(queue, db_path, make_worker):
    done = queue.submit(Job("done", jobs.noop))
    failed = queue.submit(Job("failed", jobs.fail, max_attempts=1))
    drain(make_worker(db_path))
    assert queue.cancel(done) is False
    assert queue.cancel(failed) is False
    assert queue.cancel("no-such-id") is False
    assert (status_of(queue, done), status_of(queue, failed)) == ("completed", "failed")


def test_cancel_refuses_running_job(queue, db_path, make_worker):
    import threading
    import uuid

    key = f"cancel-running-{uuid.uuid4()}"  # events are process-wide: one per run
    job_id = queue.submit(Job("blocker", jobs.block_until_released, params={"key": key}))
    worker = make_worker(db_path)
    thread = threading.Thread(target=worker.process_one)
    thread.start()
    try:
        assert jobs.event(f"{key}:started").wait(10)
        assert queue.cancel(job_id) is False
        assert status_of(queue, job_id) == "running"
    finally:
        jobs.event(f"{key}:release").set()
        thread.join(10)
    assert status_of(queue, job_id) == "completed"


# -- requeue --------------------------------------------------------------------------------
def test_requeue_failed_job(queue, db_path, tmp_path, make_worker):
    counter = tmp_path / "counter"
    job_id = queue.submit(Job("flaky", jobs.fail_n_times, max_attempts=2,
                              params={"counter_path": str(counter), "n": 2, "value": 9}))
    worker = make_worker(db_path)
    drain(worker)
    assert status_of(queue, job_id) == "failed"

    assert queue.requeue_job(job_id) is True
    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"], status["error"]) == ("pending", 0, None)

    assert drain(worker) == 1
    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"], status["result"]) == ("completed", 1, 9)
    assert len(status["executions"]) == 3  # history is kept


def test_requeue_cancelled_job(queue, db_path, make_worker):
    job_id = queue.submit(Job("c", jobs.add, params={"a": 1, "b": 1}))
    queue.cancel(job_id)
    assert queue.requeue_job(job_id) is True
    assert status_of(queue, job_id) == "pending"
    drain(make_worker(db_path))
    assert queue.get_result(job_id) == 2


def test_requeue_refuses_pending_completed_and_unknown(queue, db_path, make_worker):
    pending = queue.submit(Job("p", jobs.noop, priority=-1))
    done = queue.submit(Job("d", jobs.identity, params={"value": 1}, priority=5))
    make_worker(db_path).process_one()
    assert status_of(queue, done) == "completed"
    assert queue.requeue_job(pending) is False
    assert queue.requeue_job(done) is False
    assert queue.requeue_job("no-such-id") is False
    assert queue.get_result(done) == 1


# -- clear_completed -----------------------------------------------------------------------
def test_clear_completed_removes_completed_and_cancelled_only(queue, db_path, make_worker):
    done = [queue.submit(Job("d", jobs.noop)) for _ in range(3)]
    failed = queue.submit(Job("f", jobs.fail, max_attempts=1))
    drain(make_worker(db_path))
    cancelled = queue.submit(Job("c", jobs.noop))
    queue.cancel(cancelled)
    pending = queue.submit(Job("p", jobs.noop))

    assert queue.clear_completed() == 4
    for job_id in [*done, cancelled]:
        assert queue.get_status(job_id) == {"exists": False}
    assert status_of(queue, failed) == "failed"
    assert status_of(queue, pending) == "pending"
    assert queue.stats()["total"] == 2
    assert queue.clear_completed() == 0


def test_clear_completed_before_timestamp(queue, db_path, make_worker):
    worker = make_worker(db_path)
    old = queue.submit(Job("old", jobs.noop))
    drain(worker)
    cutoff = queue.get_status(old)["completed_at"]
    # A timestamp strictly after the first completion and before the second one.
    cutoff = (datetime.fromisoformat(cutoff) + timedelta(microseconds=1)).isoformat()
    new = queue.submit(Job("new", jobs.noop))
    drain(worker)
    assert queue.get_status(new)["completed_at"] > cutoff

    assert queue.clear_completed(before_timestamp=cutoff) == 1
    assert queue.get_status(old) == {"exists": False}
    assert status_of(queue, new) == "completed"


# -- stats ----------------------------------------------------------------------------------
def test_stats_of_empty_queue_has_every_status(queue):
    stats = queue.stats()
    assert set(stats) == ALL_STATUSES | {"total"}
    assert "upstream_failed" in stats
    assert all(count == 0 for count in stats.values())


def test_stats_counts(queue, db_path, make_worker):
    for _ in range(3):
        queue.submit(Job("ok", jobs.noop, priority=5))
    failed = queue.submit(Job("f", jobs.fail, max_attempts=1, priority=5))
    queue.submit(Job("child", jobs.noop, dependencies=[failed], priority=5))
    cancelled = queue.submit(Job("c", jobs.noop))
    queue.cancel(cancelled)
    drain(make_worker(db_path))
    queue.submit(Job("p1", jobs.noop))
    queue.submit(Job("p2", jobs.noop))

    assert queue.stats() == {
        "pending": 2, "running": 0, "completed": 3, "failed": 1, "cancelled": 1,
        "timeout": 0, "upstream_failed": 1, "total": 8,
    }


# -- list_jobs ------------------------------------------------------------------------------
def test_list_jobs_newest_first_with_limit(queue):
    ids = [queue.submit(Job(f"j{i}", jobs.noop)) for i in range(5)]
    listed = queue.list_jobs()
    assert [j["id"] for j in listed] == ids[::-1]
    assert [j["id"] for j in queue.list_jobs(limit=2)] == ids[:-3:-1]
    assert queue.list_jobs(limit=0) == []
    assert set(listed[0]) >= GIGQ_JOB_KEYS
    assert listed[0]["params"] == {}  # decoded


def test_list_jobs_default_limit_is_100(queue):
    for _ in range(105):
        queue.submit(Job("j", jobs.noop))
    assert len(queue.list_jobs()) == 100
    assert len(queue.list_jobs(limit=1000)) == 105


def test_list_jobs_filters_by_status_enum_or_string(queue, db_path, make_worker):
    done = queue.submit(Job("d", jobs.noop, priority=1))
    make_worker(db_path).process_one()
    pending = [queue.submit(Job("p", jobs.noop)) for _ in range(2)]

    assert [j["id"] for j in queue.list_jobs(status=JobStatus.COMPLETED)] == [done]
    assert [j["id"] for j in queue.list_jobs(status="completed")] == [done]
    assert [j["id"] for j in queue.list_jobs(status="pending")] == pending[::-1]
    assert [j["id"] for j in queue.list_jobs(status=JobStatus.PENDING, limit=1)] == [pending[1]]
    assert queue.list_jobs(status="failed") == []


# -- get_status / get_result ---------------------------------------------------------------
def test_get_status_unknown_job(queue):
    assert queue.get_status("no-such-id") == {"exists": False}


def test_get_status_decodes_json_fields(queue, db_path, make_worker):
    parent = queue.submit(Job("parent", jobs.identity, params={"value": {"k": [1, 2]}}))
    child = queue.submit(Job("child", jobs.add, params={"a": 1, "b": 2}, dependencies=[parent],
                             priority=3, max_attempts=4, timeout=50, description="desc",
                             pass_parent_results=False, retry_delay=2))
    status = queue.get_status(child)
    assert set(status) >= GIGQ_JOB_KEYS | {"exists", "executions"}
    assert status["exists"] is True
    assert status["params"] == {"a": 1, "b": 2}
    assert status["dependencies"] == [parent]
    assert (status["priority"], status["max_attempts"], status["timeout"]) == (3, 4, 50)
    assert (status["description"], status["retry_delay"]) == ("desc", 2)
    assert status["pass_parent_results"] is False
    assert (status["status"], status["attempts"], status["result"]) == ("pending", 0, None)
    assert status["executions"] == []
    assert queue.get_status(parent)["pass_parent_results"] is None

    drain(make_worker(db_path))
    assert queue.get_status(parent)["result"] == {"k": [1, 2]}
    assert queue.get_status(child)["result"] == 3


def test_a_submission_stores_each_jobs_options_whichever_of_them_others_set(queue):
    wf = Workflow("options")
    plain = wf.add_task(jobs.identity, name="plain")
    dressed = wf.add_task(jobs.identity, name="dressed", depends_on=[plain],
                          pass_parent_results=False, cache_version=2, tags=["gpu"])
    run = wf.submit(queue)
    alone = queue.submit(Job("alone", jobs.identity))  # no workflow, no option
    for job_id, expected in ((plain.id, (None, None, [], run.id)),
                             (dressed.id, (False, "2", ["gpu"], run.id)),
                             (alone, (None, None, [], None))):
        status = queue.get_status(job_id)
        assert (status["pass_parent_results"], status["cache_version"], status["tags"],
                status["workflow_id"]) == expected, status["name"]
        assert (status["status"], status["attempts"], status["map_param"]) == (
            "pending", 0, None)


def test_job_rows_have_the_same_columns_on_every_backend(queue):
    job_id = queue.submit(Job("j", jobs.noop))
    assert set(queue.get_status(job_id)) == GIGQ_JOB_KEYS | GIGQ_FLOW_JOB_KEYS | {
        "exists", "executions"}
    assert set(queue.list_jobs()[0]) == GIGQ_JOB_KEYS | GIGQ_FLOW_JOB_KEYS


def test_get_result(queue, db_path, make_worker):
    job_id = queue.submit(Job("r", jobs.identity, params={"value": [1, {"a": None}]}))
    assert queue.get_result(job_id) is None
    drain(make_worker(db_path))
    assert queue.get_result(job_id) == [1, {"a": None}]


def test_get_result_unknown_job_is_key_error(queue):
    with pytest.raises(KeyError):
        queue.get_result("no-such-id")


def test_second_queue_object_sees_the_same_file(queue, db_path):
    job_id = queue.submit(Job("x", jobs.noop))
    other = JobQueue(str(db_path))
    assert other.get_status(job_id)["status"] == "pending"


# -- timestamps ---------------------------------------------------------------------------
def test_timestamps_are_written_as_datetime_isoformat_writes_them(monkeypatch):
    before = datetime.now().isoformat(timespec="microseconds")
    stamped = clock.now_iso()
    assert before <= stamped <= datetime.now().isoformat(timespec="microseconds")

    class Clock:  # the last microsecond of a second, then the next second
        readings = iter([1_700_000_000.999999, 1_700_000_001.0, 1_700_000_001.25])

        @staticmethod
        def time():
            return next(Clock.readings)

    monkeypatch.setattr(clock, "time", Clock)
    for expected in (1_700_000_000.999999, 1_700_000_001.0, 1_700_000_001.25):
        assert clock.now_iso() == datetime.fromtimestamp(expected).isoformat(
            timespec="microseconds")
