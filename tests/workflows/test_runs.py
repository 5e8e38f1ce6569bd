"""Run handles and background workers: persisted workflows reattached from
another process, workflow.run() with functions of ``__main__``, Worker.start_background /
stop / context manager, WorkflowRun.wait with timeout and progress."""

from __future__ import annotations

import threading
import time

import pytest
from support import jobs
from support.helpers import subprocess_env, wait_until
from support.workflows import finish, python_script, run_python

from gigq_flow import Job, JobNotFoundError, Worker, Workflow, WorkflowRun
from gigq_flow.errors import NotFoundError, WorkflowNotFoundError

pytestmark = pytest.mark.contract

# -- persisted workflows ---------------------------------------------------------------------


def _mixed_workflow(name="mixed"):
    wf = Workflow(name)
    load = wf.add_task(jobs.identity, {"value": 6}, name="load")
    wf.add_task(jobs.gigq_style, {"x": 1}, depends_on=[load], name="total")
    bad = wf.add_task(jobs.fail, {"message": "no disk"}, name="bad", max_attempts=1)
    wf.add_task(jobs.identity, {"value": 0}, depends_on=[bad], name="after")
    return wf


def test_list_workflows_with_counts_newest_first(queue):
    first = _mixed_workflow("first")
    run1 = finish(queue, first.submit(queue))
    second = Workflow("second")
    second.add_task(jobs.identity, {"value": 1})
    second.add_task(jobs.identity, {"value": 2})
    run2 = second.submit(queue)
    queue.submit(Job(name="loose", function=jobs.identity, params={"value": 0}))  # no workflow

    listed = queue.list_workflows()
    assert [w["id"] for w in listed] == [run2.id, run1.id]
    by_id = {w["id"]: w for w in listed}
    assert by_id[run1.id]["name"] == "first" and by_id[run1.id]["total"] == 4
    counts = by_id[run1.id]["counts"]
    assert {k: v for k, v in counts.items() if v} == {
        "completed": 2, "failed": 1, "upstream_failed": 1}
    assert set(counts) >= {"pending", "running", "completed", "failed", "cancelled",
                           "timeout", "upstream_failed"}
    assert by_id[run2.id]["counts"]["pending"] == 2 and by_id[run2.id]["total"] == 2
    assert by_id[run1.id]["created_at"] == run1.created_at


def test_get_workflow_and_load_give_the_same_handle(queue):
    wf = _mixed_workflow()
    run = finish(queue, wf.submit(queue))
    for handle in (queue.get_workflow(run.id), Workflow.load(queue, run.id)):
        assert isinstance(handle, WorkflowRun)
        assert (handle.id, handle.name) == (run.id, "mixed")
        assert handle.done
        assert handle.results() == {"load": 6, "total": 7}
        assert handle.status() == run.status()
    with pytest.raises(WorkflowNotFoundError) as info:
        queue.get_workflow("no-such-workflow")
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, KeyError)
    assert not isinstance(info.value, JobNotFoundError)  # a workflow is not a job
    assert "no-such-workflow" in str(info.value)


REATTACH = """
    import json, sys
    from gigq_flow import JobQueue, Workflow

    queue = JobQueue(sys.argv[1])
    run = queue.get_workflow(sys.argv[2])
    loaded = Workflow.load(queue, sys.argv[2])
    print(json.dumps({
        "name": run.name, "done": run.done, "status": run.status(),
        "results": run.results(), "failed": run.failed(),
        "loaded_results": loaded.results(),
    }))
"""


def test_reattach_a_run_from_a_second_process(queue, tmp_path):
    wf = _mixed_workflow()
    run = finish(queue, wf.submit(queue))
    script = python_script(tmp_path, "reattach.py", REATTACH)
    seen = run_python(script, subprocess_env(), queue.db_path, run.id)
    assert seen["name"] == "mixed" and seen["done"] is True
    assert seen["status"] == run.status()
    assert seen["status"]["tasks"] == {"load": "completed", "total": "completed",
                                       "bad": "failed", "after": "upstream_failed"}
    assert seen["results"] == seen["loaded_results"] == {"load": 6, "total": 7}
    assert [(e["name"], e["status"]) for e in seen["failed"]] == [
        ("bad", "failed"), ("after", "upstream_failed")]
    assert "no disk" in seen["failed"][0]["error"]


DRAIN_IN_ANOTHER_PROCESS = """
    import json, sys
    from gigq_flow import JobQueue, Worker

    queue = JobQueue(sys.argv[1])
    run = queue.get_workflow(sys.argv[2])
    with Worker(sys.argv[1], polling_interval=0.1, concurrency=2):
        finished = run.wait(timeout=30)
    print(json.dumps({"finished": finished, "results": run.results()}))
"""


def test_a_worker_process_runs_a_workflow_submitted_here(queue, tmp_path):
    wf = Workflow("elsewhere")
    a = wf.add_task(jobs.identity, {"value": 2}, name="a")
    b = wf.add_task(jobs.double, {"x": 5}, depends_on=[a], name="b")
    wf.add_task(jobs.sum_parents, depends_on=[a, b], name="c")
    run = wf.submit(queue)
    script = python_script(tmp_path, "drain.py", DRAIN_IN_ANOTHER_PROCESS)
    seen = run_python(script, subprocess_env(), queue.db_path, run.id)
    assert seen == {"finished": True, "results": {"a": 2, "b": 10, "c": 12}}
    assert run.done and run.results() == seen["results"]


NOTEBOOK_STYLE = """
    import json, os, sys
    from gigq_flow import JobQueue, Workflow

    def load(n):
        return list(range(n))

    def square(parent_results):
        return [x * x for x in parent_results.by_name["load"]]

    def total(parent_results):
        return sum(parent_results.by_name["square"]) + sum(parent_results.by_name["load"])

    def summary(parent_results, label):
        return {"label": label, "parents": sorted(parent_results.by_name)}

    wf = Workflow("notebook")
    l = wf.add_task(load, {"n": 5})
    s = wf.add_task(square, depends_on=[l])
    t = wf.add_task(total, depends_on=[l, s])
    wf.add_task(summary, {"label": "done"}, depends_on=[t, s])
    run = wf.run(JobQueue(sys.argv[1]), workers=2, progress=False)
    out = {"results": run.results(), "done": run.done,
           "modules": sorted({job.function_module for job in wf.jobs})}

    # No queue given: the embedded default, gigq_flow.db in the working directory.
    wf2 = Workflow("default-queue")
    wf2.add_task(load, {"n": 3})
    run2 = wf2.run(workers=2, progress=False)
    out["default"] = run2.results()
    out["default_db"] = os.path.exists(os.path.join(os.getcwd(), "gigq_flow.db"))
    print(json.dumps(out))
"""


def test_workflow_run_with_functions_defined_in_main(tmp_path):
    script = python_script(tmp_path, "notebook.py", NOTEBOOK_STYLE)
    seen = run_python(script, subprocess_env(), str(tmp_path / "nb.db"))
    assert seen["modules"] == ["__main__"]
    assert seen["done"] is True
    assert seen["results"] == {
        "load": [0, 1, 2, 3, 4],
        "square": [0, 1, 4, 9, 16],
        "total": 30 + 10,
        "summary": {"label": "done", "parents": ["square", "total"]},
    }
    assert seen["default"] == {"load": [0, 1, 2]}
    assert seen["default_db"] is True


def started_threads(before: set) -> list:
    """Threads started since ``before`` still alive, less the process-wide wake-up
    listener (postgres), which outlives the workers."""
    return [t for t in set(threading.enumerate()) - before
            if t.is_alive() and not t.name.startswith("gigq-flow-listen-")]


def test_workflow_run_in_process_returns_the_finished_run(queue):
    wf = Workflow("inline")
    a = wf.add_task(jobs.identity, {"value": 4}, name="a")
    wf.add_task(jobs.double, {"x": 4}, depends_on=[a])
    before = set(threading.enumerate())
    run = wf.run(queue, workers=2, progress=False, timeout=20)
    assert isinstance(run, WorkflowRun) and run.done
    assert run.results() == {"a": 4, "double": 8}
    # The threads it started are stopped.
    wait_until(lambda: not started_threads(before), timeout=5)


def test_workflow_run_without_waiting_stops_its_threads_when_done(queue):
    key = f"nowait-{queue.db_path}"
    wf = Workflow("nowait")
    gate = wf.add_task(jobs.block_until_released, {"key": key}, name="gate")
    wf.add_task(jobs.identity, {"value": 1}, depends_on=[gate], name="after")
    before = set(threading.enumerate())
    run = wf.run(queue, workers=2, wait=False, progress=False)
    try:
        assert jobs.event(f"{key}:started").wait(10)
        assert not run.done
    finally:
        jobs.event(f"{key}:release").set()
    assert run.wait(timeout=20)
    assert run.results() == {"gate": "released", "after": 1}
    wait_until(lambda: not started_threads(before), timeout=10)


# -- WorkflowRun.wait and status ------------------------------------------------------------


def test_wait_returns_false_on_timeout_then_true_when_done(queue):
    wf = Workflow("waiting")
    a = wf.add_task(jobs.identity, {"value": 1}, name="a")
    wf.add_task(jobs.identity, {"value": 2}, depends_on=[a], name="b")
    run = wf.submit(queue)
    started = time.monotonic()
    assert run.wait(timeout=0.2) is False
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2
    assert not run.done
    status = run.status()
    assert status["done"] is False and status["total"] == 2
    assert status["counts"]["pending"] == 2
    assert status["jobs"] == {job.id: "pending" for job in wf.jobs}
    with Worker(queue.db_path, polling_interval=0.1):
        assert run.wait(timeout=20) is True
    assert run.done and run.status()["done"] is True
    assert run.status()["tasks"] == {"a": "completed", "b": "completed"}
    assert run.wait(timeout=0) is True  # already done: no waiting


def test_wait_with_progress_shows_a_tqdm_bar(queue, capsys):
    wf = Workflow("with-bar")
    for i in range(3):
        wf.add_task(jobs.identity, {"value": i}, name=f"j{i}")
    run = wf.submit(queue)
    with Worker(queue.db_path, polling_interval=0.1, concurrency=2):
        assert run.wait(timeout=20, progress=True) is True
    err = capsys.readouterr().err
    assert "with-bar" in err and "3/3" in err


def test_wait_with_progress_on_timeout_returns_false(queue, capsys):
    wf = Workflow("bar-timeout")
    wf.add_task(jobs.identity, {"value": 1})
    run = wf.submit(queue)
    assert run.wait(timeout=0.1, progress=True) is False
    assert "0/1" in capsys.readouterr().err


# -- Worker in the background ---------------------------------------------------------------


def _worker_threads(worker_id):
    return [t for t in threading.enumerate() if worker_id in t.name and t.is_alive()]


def test_start_background_returns_a_thread_and_stop_wait_joins(queue):
    worker = Worker(queue.db_path, worker_id="bg-worker", polling_interval=5, concurrency=2)
    thread = worker.start_background()
    try:
        assert isinstance(thread, threading.Thread)
        assert thread.is_alive() and thread.daemon
        wf = Workflow("bg")
        a = wf.add_task(jobs.identity, {"value": 1}, name="a")
        wf.add_task(jobs.double, {"x": 3}, depends_on=[a])
        run = wf.submit(queue)
        assert run.wait(timeout=20)  # woken by the submit, not by the 5 s polling
        assert run.results() == {"a": 1, "double": 6}
        with pytest.raises(ValueError, match="already running"):
            worker.start_background()
    finally:
        worker.stop(wait=True, timeout=10)
    assert not thread.is_alive()
    assert not _worker_threads("bg-worker")


def test_stop_lets_the_running_job_finish(queue):
    key = f"finish-{queue.db_path}"
    wf = Workflow("finishing")
    job = wf.add_task(jobs.block_until_released, {"key": key}, name="long")
    later = wf.add_task(jobs.identity, {"value": 1}, depends_on=[job], name="later")
    run = wf.submit(queue)
    worker = Worker(queue.db_path, polling_interval=0.1)
    thread = worker.start_background()
    assert jobs.event(f"{key}:started").wait(10)
    worker.stop(wait=True, timeout=0.2)
    assert thread.is_alive()  # the job is still running: stop() does not kill it
    jobs.event(f"{key}:release").set()
    thread.join(10)
    assert not thread.is_alive()
    assert queue.get_status(job.id)["status"] == "completed"
    assert queue.get_status(later.id)["status"] == "pending"  # nothing claimed after stop
    assert not run.done


def test_worker_context_manager_runs_in_the_background(queue):
    wf = Workflow("ctx")
    wf.add_task(jobs.identity, {"value": 1}, name="a")
    run = wf.submit(queue)
    with Worker(queue.db_path, worker_id="ctx-worker", polling_interval=0.1) as worker:
        assert isinstance(worker, Worker)
        assert _worker_threads("ctx-worker")
        assert run.wait(timeout=20)
    assert not _worker_threads("ctx-worker")
    assert run.results() == {"a": 1}


def test_stop_wakes_a_thread_that_was_claiming_when_stop_was_called(db_path):
    worker = Worker(db_path, polling_interval=30)
    original_claim = worker.store.claim
    stopped = threading.Event()

    def claim_then_stop(*args, **kwargs):
        claimed = original_claim(*args, **kwargs)
        if not stopped.is_set():
            worker.stop()  # stop() arrives while this thread is inside claim()
            stopped.set()
        return claimed

    worker.store.claim = claim_then_stop
    thread = worker.start_background()
    try:
        assert stopped.wait(10)
        thread.join(1.5)  # stop() was called once, as a user would; no second wake-up
        assert not thread.is_alive()
    finally:
        worker.store.wake_all()
        thread.join(10)


def test_work_submitted_while_a_thread_is_claiming_is_picked_up_promptly(queue):
    worker = Worker(queue.db_path, polling_interval=30)
    original_claim = worker.store.claim
    job = Job(name="late", function=jobs.identity, params={"value": 1})
    submitted = threading.Event()

    def claim_then_submit(*args, **kwargs):
        claimed = original_claim(*args, **kwargs)
        if claimed is None and not submitted.is_set():
            queue.submit(job)  # work arrives just after this thread found none
            submitted.set()
        return claimed

    worker.store.claim = claim_then_submit
    thread = worker.start_background()
    try:
        assert submitted.wait(10)
        wait_until(lambda: queue.get_status(job.id)["status"] == "completed", timeout=1.5)
    finally:
        worker.stop(wait=True, timeout=10)
    assert not thread.is_alive()


def test_a_submitted_runs_edges_are_known_without_reading_them_back(queue):
    """The submitting process draws from the edges it submitted: the same edges, in the
    order the queue lists them, as any other process reads back."""
    outside = queue.submit(Job("outside", jobs.noop))
    late = Job("late", jobs.noop)  # created first, added last
    time.sleep(0.002)  # a creation time of its own
    first = Job("first", jobs.noop)
    second = Job("second", jobs.noop, dependencies=[first.id, outside, first.id])
    wf = Workflow("edges")
    wf.add_job(first)
    wf.add_job(second)
    wf.add_job(late, depends_on=[second, first])
    run = wf.submit(queue)
    read_back = queue.get_workflow(run.id)
    assert read_back._read_edges() == tuple(queue.store.workflow_edges(run.id))
    assert run._read_edges() == read_back._read_edges()
    assert run._read_edges()[0] == (second.id, late.id)  # the earliest created child first
