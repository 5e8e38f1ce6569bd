"""Dependencies: readiness, parent_results in its three modes, failure propagation."""

from __future__ import annotations

import pytest
from support import jobs
from support.helpers import drain, lines, status_of

from gigq_flow import Job

pytestmark = pytest.mark.contract


@pytest.fixture
def parents(queue):
    """Two completed-able parents: 'load' -> 1, 'clean' -> "two"."""
    p1 = queue.submit(Job("load", jobs.identity, params={"value": 1}))
    p2 = queue.submit(Job("clean", jobs.identity, params={"value": "two"}))
    return p1, p2


# -- readiness ------------------------------------------------------------------------------
def test_child_runs_only_after_all_parents_completed(queue, db_path, tmp_path, make_worker):
    log = tmp_path / "calls.log"

    def rec(label, **kw):
        return Job(label, jobs.record_call, params={"log_path": str(log), "label": label}, **kw)

    p1 = queue.submit(rec("p1", priority=1))
    p2 = queue.submit(rec("p2", priority=0))
    child = queue.submit(rec("child", priority=100, dependencies=[p1, p2]))
    worker = make_worker(db_path)

    assert worker.process_one()  # the child outranks both parents but is not ready
    assert lines(log) == ["p1"]
    assert status_of(queue, child) == "pending"
    assert worker.process_one()
    assert lines(log) == ["p1", "p2"]
    assert worker.process_one()
    assert lines(log) == ["p1", "p2", "child"]
    assert worker.process_one() is False


def test_child_of_already_completed_parent_is_ready(queue, db_path, make_worker):
    parent = queue.submit(Job("p", jobs.identity, params={"value": 5}))
    drain(make_worker(db_path))
    child = queue.submit(Job("c", jobs.takes_parent_results, dependencies=[parent]))
    assert drain(make_worker(db_path)) == 1
    assert queue.get_result(child)["values"] == [5]


def test_diamond_runs_in_dependency_order(queue, db_path, tmp_path, make_worker):
    log = tmp_path / "calls.log"

    def rec(label, deps=(), priority=0):
        return Job(label, jobs.record_call, params={"log_path": str(log), "label": label},
                   dependencies=list(deps), priority=priority)

    root = queue.submit(rec("root"))
    left = queue.submit(rec("left", [root], priority=1))
    right = queue.submit(rec("right", [root], priority=2))
    queue.submit(rec("sink", [left, right], priority=50))
    drain(make_worker(db_path))
    assert lines(log) == ["root", "right", "left", "sink"]


# -- parent_results, auto mode --------------------------------------------------------------
def test_auto_mode_passes_to_parent_results_param(queue, db_path, parents, make_worker):
    p1, p2 = parents
    child = queue.submit(Job("child", jobs.takes_parent_results, dependencies=[p1, p2]))
    drain(make_worker(db_path))
    result = queue.get_result(child)
    assert result["ids"] == [p1, p2]
    assert result["values"] == [1, "two"]


def test_auto_mode_passes_to_kwargs(queue, db_path, parents, make_worker):
    p1, p2 = parents
    child = queue.submit(Job("child", jobs.takes_kwargs, params={"extra": 1},
                             dependencies=[p1, p2]))
    drain(make_worker(db_path))
    assert queue.get_result(child) == {"keys": ["extra", "parent_results"], "parent_ids": [p1, p2]}


def test_auto_mode_skips_function_without_it(queue, db_path, parents, make_worker):
    p1, p2 = parents
    child = queue.submit(Job("child", jobs.takes_neither, params={"x": 7},
                             dependencies=[p1, p2]))
    drain(make_worker(db_path))
    status = queue.get_status(child)
    assert (status["status"], status["result"], status["error"]) == ("completed", 7, None)


def test_no_parent_results_without_dependencies(queue, db_path, make_worker):
    plain = queue.submit(Job("plain", jobs.takes_parent_results))
    forced = queue.submit(Job("forced", jobs.takes_kwargs, pass_parent_results=True))
    drain(make_worker(db_path))
    assert status_of(queue, plain) == "completed"
    assert queue.get_result(plain) is None
    assert queue.get_result(forced) == {"keys": [], "parent_ids": None}


def test_parent_results_follow_dependency_order_not_completion_order(queue, db_path, parents,
                                                                    make_worker):
    p1, p2 = parents  # p1 completes first
    child = queue.submit(Job("child", jobs.takes_parent_results, dependencies=[p2, p1]))
    drain(make_worker(db_path))
    result = queue.get_result(child)
    assert result["ids"] == [p2, p1]
    assert result["values"] == ["two", 1]


def test_parent_results_by_name(queue, db_path, parents, make_worker):
    p1, p2 = parents
    child = queue.submit(Job("child", jobs.takes_parent_results, dependencies=[p1, p2]))
    drain(make_worker(db_path))
    assert queue.get_result(child)["by_name"] == {"load": 1, "clean": "two"}


# -- parent_results, forced on and off ------------------------------------------------------
def test_pass_parent_results_true_always_passes(queue, db_path, parents, make_worker):
    p1, p2 = parents
    explicit = queue.submit(Job("explicit", jobs.takes_parent_results,
                                dependencies=[p1, p2], pass_parent_results=True))
    # takes_neither cannot accept it: the call must fail, proving it was passed.
    refused = queue.submit(Job("refused", jobs.takes_neither, dependencies=[p1],
                               pass_parent_results=True, max_attempts=1))
    drain(make_worker(db_path))
    assert queue.get_result(explicit)["values"] == [1, "two"]
    status = queue.get_status(refused)
    assert status["status"] == "failed"
    assert "parent_results" in status["error"]


def test_pass_parent_results_false_never_passes(queue, db_path, parents, make_worker):
    p1, p2 = parents
    by_param = queue.submit(Job("by-param", jobs.takes_parent_results,
                                dependencies=[p1, p2], pass_parent_results=False))
    by_kwargs = queue.submit(Job("by-kwargs", jobs.takes_kwargs,
                                 dependencies=[p1, p2], pass_parent_results=False))
    drain(make_worker(db_path))
    assert status_of(queue, by_param) == "completed"
    assert queue.get_result(by_param) is None
    assert queue.get_result(by_kwargs) == {"keys": [], "parent_ids": None}


# -- failure propagation -------------------------------------------------------------------
def test_failed_parent_marks_descendants_upstream_failed_and_requeue_restores(
    queue, db_path, tmp_path
, make_worker):
    counter = tmp_path / "counter"
    parent = queue.submit(Job("parent", jobs.fail_n_times, max_attempts=2,
                              params={"counter_path": str(counter), "n": 2, "value": 10}))
    sibling = queue.submit(Job("sibling", jobs.identity, params={"value": 1}))
    child = queue.submit(Job("child", jobs.takes_parent_results, dependencies=[parent, sibling]))
    grandchild = queue.submit(Job("grandchild", jobs.takes_parent_results, dependencies=[child]))
    worker = make_worker(db_path)

    assert drain(worker) == 3  # two attempts of the parent, the sibling
    assert status_of(queue, parent) == "failed"
    assert status_of(queue, sibling) == "completed"
    for job_id in (child, grandchild):
        status = queue.get_status(job_id)
        assert status["status"] == "upstream_failed"
        assert status["executions"] == []
    assert queue.stats()["upstream_failed"] == 2

    assert queue.requeue_job(parent) is True
    assert [status_of(queue, j) for j in (parent, child, grandchild)] == ["pending"] * 3
    assert queue.get_status(child)["error"] is None

    assert drain(worker) == 3
    assert queue.get_result(child)["values"] == [10, 1]
    assert queue.get_result(grandchild)["values"] == [{"ids": [parent, sibling], "values": [10, 1],
                                                      "by_name": {"parent": 10, "sibling": 1}}]


def test_cancelled_parent_marks_children_upstream_failed(queue, db_path, make_worker):
    parent = queue.submit(Job("parent", jobs.noop))
    child = queue.submit(Job("child", jobs.noop, dependencies=[parent]))
    assert queue.cancel(parent)
    assert status_of(queue, child) == "upstream_failed"
    assert make_worker(db_path).process_one() is False

    assert queue.requeue_job(parent)
    assert status_of(queue, child) == "pending"
    assert drain(make_worker(db_path)) == 2


def test_requeue_keeps_child_failed_while_another_parent_is_still_failed(queue, db_path,
                                                                         make_worker):
    a = queue.submit(Job("a", jobs.fail, max_attempts=1))
    b = queue.submit(Job("b", jobs.fail, max_attempts=1))
    child = queue.submit(Job("child", jobs.noop, dependencies=[a, b]))
    drain(make_worker(db_path))
    assert status_of(queue, child) == "upstream_failed"
    assert queue.requeue_job(a)
    assert status_of(queue, child) == "upstream_failed"  # b is still failed


def test_submitting_child_of_failed_parent(queue, db_path, make_worker):
    parent = queue.submit(Job("parent", jobs.fail, max_attempts=1))
    drain(make_worker(db_path))
    child = queue.submit(Job("child", jobs.noop, dependencies=[parent]))
    assert status_of(queue, child) == "upstream_failed"
    assert make_worker(db_path).process_one() is False


def test_a_completion_claims_the_next_job_in_its_own_transaction(queue, db_path, make_worker):
    parent = queue.submit(Job("parent", jobs.identity, params={"value": 1}))
    child = queue.submit(Job("child", jobs.identity, params={"value": 2}, dependencies=[parent]))
    store = make_worker(db_path).store
    claim = store.claim("w", "w-1")
    assert claim.id == parent and claim.has_children
    completed, following = store.complete_and_claim([(claim, "1")], "w", ["w-2", "w-3"])
    assert completed == [True]  # released by the completion, claimed with it; nothing more
    assert [job.id for job in following] == [child] and following[0].execution_id == "w-2"
    assert (queue.get_status(parent)["status"], queue.get_status(child)["status"]) == (
        "completed", "running")
    assert store.complete_and_claim([(claim, "1")], "w", ["w-4"]) == ([False], [])  # fenced
    completed, following = store.complete_and_claim([(following[0], "2")], "w", [])
    assert completed == [True] and following == []
    assert queue.get_result(child) == 2


def test_a_batch_completes_several_jobs_and_claims_several_in_priority_order(
        queue, db_path, make_worker):
    firsts = [queue.submit(Job(f"first-{i}", jobs.identity, params={"value": i}, priority=9))
              for i in range(3)]
    later = [queue.submit(Job(f"later-{i}", jobs.identity, params={"value": i}, priority=i))
             for i in range(3)]
    store = make_worker(db_path).store
    claimed = store.complete_and_claim([], "w", ["w-1", "w-2", "w-3"])[1]
    assert [claim.id for claim in claimed] == firsts
    completed, following = store.complete_and_claim(
        [(claim, str(i)) for i, claim in enumerate(claimed)], "w", ["w-4", "w-5"])
    assert completed == [True, True, True]
    assert [claim.id for claim in following] == [later[2], later[1]]  # by priority
    assert [queue.get_result(job_id) for job_id in firsts] == [0, 1, 2]
    assert {queue.get_status(job_id)["status"] for job_id in later[1:]} == {"running"}


def test_parents_completed_together_release_their_children_once_all_are_done(
        queue, db_path, make_worker):
    """A child shared by parents of one batch, and a child submitted while its parents
    ran (unknown at their claim), each become ready once, when their last parent is."""
    parents = [queue.submit(Job(f"parent-{i}", jobs.identity, params={"value": i}))
               for i in range(3)]
    store = make_worker(db_path).store
    claimed = store.complete_and_claim([], "w", ["w-1", "w-2", "w-3"])[1]
    assert [claim.id for claim in claimed] == parents
    assert not any(claim.has_children for claim in claimed)
    shared = queue.submit(Job("shared", jobs.noop, dependencies=parents[:2]))
    late = queue.submit(Job("late", jobs.noop, dependencies=parents))
    completed, following = store.complete_and_claim(
        [(claim, str(i)) for i, claim in enumerate(claimed[:2])], "w", ["w-4", "w-5"])
    assert completed == [True, True]
    assert [claim.id for claim in following] == [shared]  # late waits for parent-2
    assert queue.get_status(late)["status"] == "pending"
    completed, following = store.complete_and_claim([(claimed[2], "2")], "w", ["w-6"])
    assert completed == [True] and [claim.id for claim in following] == [late]


def test_unclaim_returns_jobs_that_never_started_without_counting_an_attempt(
        queue, db_path, make_worker):
    job_ids = [queue.submit(Job(f"job-{i}", jobs.identity, params={"value": i}))
               for i in range(2)]
    store = make_worker(db_path).store
    claimed = store.complete_and_claim([], "w", ["w-1", "w-2"])[1]
    assert store.unclaim(claimed) == 2
    assert store.unclaim(claimed) == 0  # no longer held by these claims
    for job_id in job_ids:
        status = queue.get_status(job_id)
        assert (status["status"], status["attempts"], status["worker_id"]) == (
            "pending", 0, None)
        assert status["executions"] == []
    assert drain(make_worker(db_path)) == 2
    assert [queue.get_result(job_id) for job_id in job_ids] == [0, 1]
