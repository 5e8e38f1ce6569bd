"""Failure propagation: a final failure (failed, timeout, cancelled) turns
every pending descendant upstream_failed in the same transaction, with an error naming
the failed job; requeue_job reverses it; no workflow is left pending forever."""

from __future__ import annotations

import pytest
from support import jobs
from support.helpers import drain
from support.workflows import error_of, finish, statuses

from gigq_flow import JobStatus, Worker, Workflow

pytestmark = pytest.mark.contract

UPSTREAM = JobStatus.UPSTREAM_FAILED.value


def _flag(tmp_path, label):
    (tmp_path / label).touch()


def _unflag(tmp_path, label):
    (tmp_path / label).unlink()


def _flaggable(wf, tmp_path, label, depends_on=None):
    """A job named ``label`` that fails while the file tmp_path/label exists."""
    return wf.add_task(jobs.fail_if_flag, {"label": label, "flag_dir": str(tmp_path)},
                       depends_on=depends_on, name=label, max_attempts=1)


def test_failure_propagates_through_several_levels_and_requeue_reverses_it(queue, tmp_path):
    wf = Workflow("chain")
    _flag(tmp_path, "extract")
    extract = _flaggable(wf, tmp_path, "extract")
    side = _flaggable(wf, tmp_path, "side")  # independent of the failure
    level1 = _flaggable(wf, tmp_path, "level1", [extract])
    level2 = _flaggable(wf, tmp_path, "level2", [level1, side])
    level3 = _flaggable(wf, tmp_path, "level3", [level2])
    run = finish(queue, wf.submit(queue))
    assert statuses(queue, wf.jobs) == {
        "extract": "failed", "side": "completed",
        "level1": UPSTREAM, "level2": UPSTREAM, "level3": UPSTREAM,
    }
    assert "flagged failure of extract" in error_of(queue, extract)
    for job in (level1, level2, level3):
        # The error names the job that failed (the root), not the intermediate parent.
        assert extract.id in error_of(queue, job) and "'extract'" in error_of(queue, job)
        assert queue.get_status(job.id)["attempts"] == 0  # never started
    assert run.done and run.status()["counts"][UPSTREAM] == 3

    # Requeue of the failed job: its descendants go back to pending at once...
    _unflag(tmp_path, "extract")
    assert queue.requeue_job(extract.id)
    assert statuses(queue, [extract, level1, level2, level3]) == {
        "extract": "pending", "level1": "pending", "level2": "pending", "level3": "pending",
    }
    assert error_of(queue, level3) == ""
    assert not run.done
    # ...and then run to completion.
    finish(queue, run)
    assert set(statuses(queue, wf.jobs).values()) == {"completed"}
    assert run.results() == {name: name for name in
                             ["extract", "side", "level1", "level2", "level3"]}


def test_requeue_of_a_job_that_fails_again_propagates_again(queue, tmp_path):
    wf = Workflow("again")
    _flag(tmp_path, "a")
    a = _flaggable(wf, tmp_path, "a")
    _flaggable(wf, tmp_path, "b", [a])
    run = finish(queue, wf.submit(queue))
    assert queue.requeue_job(a.id)
    assert queue.get_status(a.id)["attempts"] == 0
    finish(queue, run)
    assert statuses(queue, wf.jobs) == {"a": "failed", "b": UPSTREAM}
    assert len(queue.get_status(a.id)["executions"]) == 2


def test_a_job_with_two_failed_parents_waits_for_both_requeues(queue, tmp_path):
    wf = Workflow("two-parents")
    _flag(tmp_path, "p1")
    _flag(tmp_path, "p2")
    p1 = _flaggable(wf, tmp_path, "p1")
    p2 = _flaggable(wf, tmp_path, "p2")
    child = _flaggable(wf, tmp_path, "child", [p1, p2])
    grandchild = _flaggable(wf, tmp_path, "grandchild", [child])
    run = finish(queue, wf.submit(queue))
    assert statuses(queue, [child, grandchild]) == {"child": UPSTREAM, "grandchild": UPSTREAM}

    _unflag(tmp_path, "p1")
    assert queue.requeue_job(p1.id)
    # Still blocked by p2: stays (or is put back) upstream_failed, naming p2.
    assert statuses(queue, [child, grandchild]) == {"child": UPSTREAM, "grandchild": UPSTREAM}
    assert p2.id in error_of(queue, child) and p2.id in error_of(queue, grandchild)
    finish(queue, run)
    assert statuses(queue, wf.jobs) == {
        "p1": "completed", "p2": "failed", "child": UPSTREAM, "grandchild": UPSTREAM,
    }

    _unflag(tmp_path, "p2")
    assert queue.requeue_job(p2.id)
    assert statuses(queue, [child, grandchild]) == {"child": "pending", "grandchild": "pending"}
    finish(queue, run)
    assert set(statuses(queue, wf.jobs).values()) == {"completed"}


def test_requeue_keeps_a_job_blocked_by_another_upstream_failed_parent(queue, tmp_path,
                                                                       make_worker):
    """a fails, x fails; c <- a; y <- x; e <- (c, y). Requeue a and let it succeed:
    e still depends on y, which is upstream_failed because of x, so e must stay
    upstream_failed (and the workflow must end), not sit pending forever."""
    wf = Workflow("indirect")
    _flag(tmp_path, "a")
    _flag(tmp_path, "x")
    a = _flaggable(wf, tmp_path, "a")
    x = _flaggable(wf, tmp_path, "x")
    c = _flaggable(wf, tmp_path, "c", [a])
    y = _flaggable(wf, tmp_path, "y", [x])
    e = _flaggable(wf, tmp_path, "e", [c, y])
    run = finish(queue, wf.submit(queue))
    assert statuses(queue, [c, y, e]) == {"c": UPSTREAM, "y": UPSTREAM, "e": UPSTREAM}

    _unflag(tmp_path, "a")
    assert queue.requeue_job(a.id)
    try:
        assert queue.get_status(e.id)["status"] == UPSTREAM
        assert x.id in error_of(queue, e) or y.id in error_of(queue, e)
    finally:
        drain(make_worker(queue.db_path))
    assert statuses(queue, wf.jobs) == {
        "a": "completed", "x": "failed", "c": "completed", "y": UPSTREAM, "e": UPSTREAM,
    }
    assert run.wait(timeout=2)


def test_cancel_of_a_parent_makes_children_upstream_failed_and_requeue_restores(queue):
    wf = Workflow("cancel")
    root = wf.add_task(jobs.identity, {"value": 1}, name="root")
    child = wf.add_task(jobs.gigq_style, {"x": 1}, depends_on=[root], name="child")
    grandchild = wf.add_task(jobs.gigq_style, {"x": 1}, depends_on=[child], name="grandchild")
    wf.add_task(jobs.identity, {"value": 2}, name="other")
    run = wf.submit(queue)
    assert queue.cancel(root.id)
    assert statuses(queue, wf.jobs) == {
        "root": "cancelled", "child": UPSTREAM, "grandchild": UPSTREAM, "other": "pending",
    }
    assert root.id in error_of(queue, grandchild) and "cancelled" in error_of(queue, grandchild)
    assert not queue.cancel(child.id)  # only pending jobs can be cancelled
    finish(queue, run)
    assert statuses(queue, wf.jobs)["other"] == "completed"
    assert {entry["name"] for entry in run.failed()} == {"root", "child", "grandchild"}

    assert queue.requeue_job(root.id)
    finish(queue, run)
    assert run.results() == {"root": 1, "child": 2, "grandchild": 3, "other": 2}


def test_timeout_as_final_failure_propagates(queue):
    key = f"timeout-{queue.db_path}"
    wf = Workflow("slow")
    slow = wf.add_task(jobs.block_until_released, {"key": key}, name="slow", timeout=1,
                       max_attempts=1)
    after = wf.add_task(jobs.identity, {"value": 1}, depends_on=[slow], name="after")
    run = wf.submit(queue)
    worker = Worker(queue.db_path, polling_interval=0.1, concurrency=2)
    worker.start_background()
    try:
        assert jobs.event(f"{key}:started").wait(10)
        assert run.wait(timeout=10)  # ends although the function is still running
        assert statuses(queue, wf.jobs) == {"slow": "timeout", "after": UPSTREAM}
        assert "timed out" in error_of(queue, slow)
        assert slow.id in error_of(queue, after) and "timeout" in error_of(queue, after)
    finally:
        jobs.event(f"{key}:release").set()
        worker.stop(wait=True, timeout=10)
    # The late return of the timed-out attempt is discarded (fencing).
    assert queue.get_status(slow.id)["status"] == "timeout"
    assert queue.get_result(slow.id) is None


def test_a_workflow_depending_on_a_failed_job_of_another_ends_upstream_failed(queue):
    first = Workflow("first")
    bad = first.add_task(jobs.fail, name="bad", max_attempts=1)
    finish(queue, first.submit(queue))
    second = Workflow("second")
    child = second.add_task(jobs.identity, {"value": 1}, depends_on=[bad.id], name="child")
    run = second.submit(queue)
    assert run.done  # propagated at submit time: nothing waits forever
    assert queue.get_status(child.id)["status"] == UPSTREAM
    assert bad.id in error_of(queue, child)


def test_cross_workflow_dependency_on_a_pending_job_waits_for_it(queue):
    first = Workflow("first")
    gate = first.add_task(jobs.identity, {"value": 1}, name="gate")
    source = first.add_task(jobs.identity, {"value": 5}, depends_on=[gate], name="source")
    run1 = first.submit(queue)
    second = Workflow("second")
    use = second.add_task(jobs.gigq_style, {"x": 1}, depends_on=[source.id], name="use")
    run2 = second.submit(queue)
    with Worker(queue.db_path, polling_interval=0.1, concurrency=2):
        assert run2.wait(timeout=20) and run1.wait(timeout=20)
    assert run2.result(use) == 6
    use_started = queue.get_status(use.id)["executions"][0]["started_at"]
    assert use_started >= queue.get_status(source.id)["completed_at"]
