"""Step output on every backend: what a step prints and logs, kept per attempt, with the
traceback of a failure; other threads' output untouched; stored while the step runs."""

from __future__ import annotations

import time

import pytest
from support import jobs
from support.helpers import drain, wait_until

from gigq_flow import Job, Workflow
from gigq_flow.errors import ConfigurationError, JobNotFoundError

pytestmark = pytest.mark.contract


def test_a_steps_prints_and_log_records_are_kept_in_order(queue, db_path, make_worker):
    job_id = queue.submit(Job("talk", jobs.talk, params={"label": "t"}))
    drain(make_worker(db_path))
    logs = queue.get_logs(job_id)
    assert logs.startswith("t line 0\nt line 1\nt line 2\nt to stderr\n"
                           "WARNING steps.t: careful with t\nERROR steps.t: caught one\n"
                           "Traceback (most recent call last):\n")
    assert logs.rstrip().endswith("KeyError: 't'")
    assert queue.get_status(job_id)["traceback"] is None  # it completed


def test_a_failed_attempt_keeps_its_output_and_full_traceback(queue, db_path, make_worker):
    job_id = queue.submit(Job("fail", jobs.print_then_fail, params={"label": "f"},
                              max_attempts=2))
    drain(make_worker(db_path))
    status = queue.get_status(job_id)
    assert status["error"] == "ValueError: deep problem in f"  # GigQ's one line stays
    executions = status["executions"]
    assert [e["status"] for e in executions] == ["failed", "failed"]
    for execution in executions:
        assert execution["traceback"].startswith("Traceback (most recent call last):\n")
        assert "in print_then_fail" in execution["traceback"]
        assert "worker.py" not in execution["traceback"]  # the step's frames only
        assert execution["traceback"].rstrip().endswith("ValueError: deep problem in f")
    assert status["traceback"] == executions[-1]["traceback"]
    for attempt in (1, 2, None):
        logs = queue.get_logs(job_id, attempt=attempt)
        assert logs.startswith("f is about to fail\nTraceback (most recent call last):")
    with pytest.raises(ConfigurationError, match="has 2 attempt"):
        queue.get_logs(job_id, attempt=3)
    with pytest.raises(JobNotFoundError):
        queue.get_logs("no-such-job")
    queue.requeue_job(job_id)  # the failed attempt becomes history with its traceback
    assert queue.get_status(job_id)["traceback"] is None
    assert len([e for e in queue.get_status(job_id)["executions"] if e["traceback"]]) == 2


def test_other_threads_output_goes_where_it_went(queue, db_path, make_worker, capsys):
    key = f"other-{id(queue)}"
    job_id = queue.submit(Job("held", jobs.print_until_released, params={"key": key}))
    worker = make_worker(db_path, polling_interval=0.1, concurrency=2)
    worker.start_background()
    assert jobs.event(f"{key}:started").wait(20)
    print("the notebook's own line")  # another thread, while the step runs
    jobs.event(f"{key}:release").set()
    wait_until(lambda: queue.get_status(job_id)["status"] == "completed")
    assert queue.get_logs(job_id) == f"{key} started\n{key} released\n"
    seen = capsys.readouterr().out
    assert "the notebook's own line" in seen and f"{key} started" not in seen


def test_two_steps_on_two_threads_keep_their_own_lines(queue, db_path, make_worker):
    wf = Workflow("two talkers")
    left = wf.add_task(jobs.print_lots, params={"n": 2000, "width": 10}, name="left")
    right = wf.add_task(jobs.talk, params={"label": "right", "lines": 2000}, name="right")
    run = wf.submit(queue)
    worker = make_worker(db_path, polling_interval=0.1, concurrency=2)
    worker.start_background()
    assert run.wait(timeout=30)
    left_lines = run.logs("left").splitlines()
    assert left_lines == [f"{i:>10}" for i in range(2000)]
    assert run.logs(right).count("right line") == 2000
    assert "right" not in run.logs(left.id)


def test_output_is_stored_while_the_step_runs(queue, db_path, make_worker):
    key = f"live-{id(queue)}"
    job_id = queue.submit(Job("live", jobs.print_until_released, params={"key": key}))
    worker = make_worker(db_path, polling_interval=0.1)
    worker.start_background()
    assert jobs.event(f"{key}:started").wait(20)
    started = time.monotonic()
    wait_until(lambda: queue.get_logs(job_id) == f"{key} started\n", timeout=5)
    assert time.monotonic() - started < 3  # stored within a second or so, not at the end
    assert queue.get_status(job_id)["status"] == "running"
    jobs.event(f"{key}:release").set()
    wait_until(lambda: queue.get_status(job_id)["status"] == "completed")
    assert queue.get_logs(job_id) == f"{key} started\n{key} released\n"


def test_output_past_the_limit_is_cut_and_says_so(queue, db_path, make_worker):
    job_id = queue.submit(Job("lots", jobs.print_lots, params={"n": 100, "width": 9}))
    drain(make_worker(db_path, output_limit=250))
    logs = queue.get_logs(job_id)
    assert logs.startswith("        0\n        1\n")
    assert logs.endswith("[output cut at 250 characters: the step wrote more]\n")
    assert len(logs) < 250 + 80
    assert queue.get_result(job_id) == 100


def test_clearing_a_job_clears_its_output(queue, db_path, make_worker):
    job_id = queue.submit(Job("talk", jobs.talk, params={"label": "c"}))
    drain(make_worker(db_path))
    assert queue.get_logs(job_id)
    assert queue.clear_completed() == 1
    assert queue.store.count_rows()["attempt_output"] == 0


def test_a_run_gives_a_steps_logs_by_name_id_or_job(queue, db_path, make_worker):
    wf = Workflow("named")
    job = wf.add_task(jobs.talk, params={"label": "n", "lines": 1}, name="talker")
    wf.add_task(jobs.talk, params={"label": "m", "lines": 1}, name="twin")
    wf.add_task(jobs.talk, params={"label": "o", "lines": 1}, name="twin")
    run = wf.submit(queue)
    drain(make_worker(db_path))
    assert run.logs("talker") == run.logs(job.id) == run.logs(job)
    assert run.logs("talker").startswith("n line 0\n")
    with pytest.raises(JobNotFoundError, match="2 steps of workflow 'named' are named 'twin'"):
        run.logs("twin")
    with pytest.raises(JobNotFoundError, match="not a job of workflow"):
        run.logs("nobody")


def test_a_step_that_prints_nothing_stores_nothing(queue, db_path, make_worker):
    job_id = queue.submit(Job("quiet", jobs.noop))
    assert queue.get_logs(job_id) == ""  # not started
    drain(make_worker(db_path))
    assert queue.get_logs(job_id) == ""
    assert queue.store.count_rows()["attempt_output"] == 0


def test_threads_of_a_step_are_not_its_output(queue, db_path, make_worker, capsys):
    """A thread the step starts is not the step's thread: its prints go where they went."""
    job_id = queue.submit(Job("spawner", jobs.print_from_a_thread))
    drain(make_worker(db_path))
    assert queue.get_logs(job_id) == "from the step\n"
    assert "from its thread" in capsys.readouterr().out
