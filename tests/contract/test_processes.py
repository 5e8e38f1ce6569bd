"""Steps on processes (``executor="processes"``): each runs in a child process of its
worker thread, with the same results, parents, output and cache as on threads; a
timeout or a cancel ends the child, a crash fails one attempt, and no child outlives
its worker."""

from __future__ import annotations

import os
import time

import pytest
from support import jobs
from support.helpers import alive, lines, wait_until

from gigq_flow import Job, Workflow

pytestmark = pytest.mark.contract


def children(worker) -> list[int]:
    return worker._steps.pids()


def test_steps_run_in_child_processes_with_results_parents_and_output(queue, db_path,
                                                                     make_worker):
    wf = Workflow("on processes")
    a = wf.add_task(jobs.whoami, params={"value": 1}, name="a")
    b = wf.add_task(jobs.whoami, params={"value": 2}, name="b", serializer="pickle")
    wf.add_task(jobs.whoami, params={"value": 3}, depends_on=[a, b], name="c")
    run = wf.submit(queue)
    worker = make_worker(db_path, polling_interval=0.1, concurrency=2, executor="processes",
                         allow_pickle=True)
    worker.start_background()
    assert run.wait(timeout=60)
    results = run.results()
    assert run.status()["counts"]["completed"] == 3
    pids = {results[name]["pid"] for name in "abc"}
    assert os.getpid() not in pids and pids <= set(children(worker))
    assert results["c"]["parents"] == {"a": results["a"], "b": results["b"]}
    logs = run.logs("c")
    assert f"whoami 3 in {results['c']['pid']}" in logs
    assert "WARNING steps.whoami: logged 3" in logs
    worker.stop(wait=True)
    assert not any(alive(pid) for pid in pids)  # no child outlives its worker


def test_a_failure_on_a_process_keeps_its_traceback_and_is_retried(queue, db_path,
                                                                 make_worker):
    job_id = queue.submit(Job("boom", jobs.fail, params={"message": "broken"},
                              max_attempts=2))
    worker = make_worker(db_path, polling_interval=0.1, executor="processes")
    worker.start_background()
    wait_until(lambda: queue.get_status(job_id)["status"] == "failed", timeout=30)
    status = queue.get_status(job_id)
    assert status["attempts"] == 2 and "RuntimeError: broken" in status["error"]
    assert 'raise RuntimeError(message)' in queue.get_logs(job_id)


def test_a_timed_out_process_step_is_killed_and_retried(queue, db_path, make_worker,
                                                       tmp_path):
    pid_file = tmp_path / "pids"
    job_id = queue.submit(Job("hangs", jobs.hang, params={"pid_file": str(pid_file)},
                              timeout=1, max_attempts=2))
    worker = make_worker(db_path, polling_interval=0.1, executor="processes")
    worker.start_background()
    wait_until(lambda: queue.get_status(job_id)["status"] == "timeout", timeout=40)
    pids = [int(pid) for pid in lines(pid_file)]
    assert len(pids) == 2 and pids[0] != pids[1]  # the second attempt had a new child
    wait_until(lambda: not any(alive(pid) for pid in pids), timeout=10, what="children gone")
    assert [e["status"] for e in queue.get_status(job_id)["executions"]] == ["timeout"] * 2


@pytest.mark.parametrize("ignore_sigterm", [False, True], ids=["sigterm", "sigkill"])
def test_cancelling_a_process_step_ends_its_process(queue, db_path, make_worker, tmp_path,
                                                    ignore_sigterm):
    pid_file = tmp_path / "pids"
    job_id = queue.submit(Job("hangs", jobs.hang, params={
        "pid_file": str(pid_file), "ignore_sigterm": ignore_sigterm}))
    after = queue.submit(Job("after", jobs.noop, dependencies=[job_id]))
    worker = make_worker(db_path, polling_interval=0.1, executor="processes")
    worker.start_background()
    pid = int(wait_until(lambda: lines(pid_file), timeout=30)[0])
    assert queue.cancel(job_id, running=True)
    wait_until(lambda: not alive(pid), timeout=10, what="the step's process ended")
    assert queue.get_status(job_id)["status"] == "cancelled"
    assert queue.get_status(after)["status"] == "upstream_failed"
    follow = queue.submit(Job("next", jobs.identity, params={"value": 5}))
    wait_until(lambda: queue.get_status(follow)["status"] == "completed", timeout=30)


def test_a_crash_fails_one_attempt_and_the_worker_goes_on(queue, db_path, make_worker):
    exits = queue.submit(Job("exits", jobs.exit_now, params={"code": 3}, max_attempts=2))
    crashes = queue.submit(Job("crashes", jobs.segfault, max_attempts=1))
    fine = queue.submit(Job("fine", jobs.identity, params={"value": 1}, priority=-1))
    worker = make_worker(db_path, polling_interval=0.1, executor="processes")
    worker.start_background()
    wait_until(lambda: queue.get_status(fine)["status"] == "completed", timeout=60)
    exited = queue.get_status(exits)
    assert (exited["status"], exited["attempts"]) == ("failed", 2)
    assert exited["error"] == "the step's process exited with code 3"
    assert "about to exit" in queue.get_logs(exits)
    crashed = queue.get_status(crashes)
    assert crashed["status"] == "failed"
    assert crashed["error"] == "the step's process was killed by signal SIGSEGV (11)"


def test_a_closure_is_shipped_by_value(queue, db_path, make_worker):
    factor = 7

    def scale(x):
        return {"value": x * factor, "pid": os.getpid()}

    wf = Workflow("closures")
    wf.add_task(scale, params={"x": 6}, name="scale")
    wf.add_task(lambda: "anonymous", name="lambda")
    run = wf.submit(queue)
    worker = make_worker(db_path, polling_interval=0.1, executor="processes")
    worker.start_background()
    assert run.wait(timeout=60)
    results = run.results()
    assert results["scale"]["value"] == 42 and results["scale"]["pid"] != os.getpid()
    assert results["lambda"] == "anonymous"


def test_the_cache_works_on_processes(queue, db_path, make_worker):
    def build():
        wf = Workflow("cached")
        first = wf.add_task(jobs.whoami, params={"value": 1}, name="first")
        wf.add_task(jobs.whoami, params={"value": 2}, depends_on=[first], name="second")
        return wf

    worker = make_worker(db_path, polling_interval=0.1, executor="processes")
    worker.start_background()
    run = build().submit(queue, cache=True)
    assert run.wait(timeout=60)
    again = build().submit(queue, cache=True)
    assert again.wait(timeout=60)
    assert again.results() == run.results()
    assert set(again.explain().values()) == {f"cached (from run {run.id})"}


def test_stopping_the_worker_ends_a_running_step_after_the_grace_period(
        queue, db_path, make_worker, tmp_path):
    pid_file = tmp_path / "pids"
    job_id = queue.submit(Job("hangs", jobs.hang, params={"pid_file": str(pid_file)}))
    worker = make_worker(db_path, polling_interval=0.1, executor="processes",
                         grace_period=0.5)
    worker.start_background()
    pid = int(wait_until(lambda: lines(pid_file), timeout=30)[0])
    started = time.monotonic()
    worker.stop(wait=True, timeout=20)
    assert time.monotonic() - started < 10
    wait_until(lambda: not alive(pid), timeout=10, what="the step's process ended")
    assert queue.get_status(job_id)["status"] == "pending"  # returned to the queue
