"""Property-based tests on random DAGs with random failures: no job starts
before all its parents completed, every job ends terminal, and upstream_failed is
exactly the set of descendants of the failed jobs that are not themselves failed;
requeues restore exactly what they should."""

from __future__ import annotations

import sys
import threading
import uuid

import networkx as nx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.helpers import drain
from support.jobs import block_until_released, dag_step, event, fail_if_flag, identity
from support.workflows import TERMINAL, expected_upstream_failed

from gigq_flow import Worker, Workflow

pytestmark = pytest.mark.contract

MAX_NODES = 12
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    # The queue and worker fixtures are shared by the examples of one test on purpose:
    # each example submits its own workflow, so examples cannot see each other's jobs.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def random_dags(draw):
    """(parents per node, failing nodes); edges only go from lower to higher index."""
    n = draw(st.integers(min_value=1, max_value=MAX_NODES))
    parents = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)
    ]
    failing = draw(st.sets(st.integers(0, n - 1), max_size=n))
    return parents, failing


def _graph(parents) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(parents)))
    graph.add_edges_from((p, child) for child, ps in enumerate(parents) for p in ps)
    return graph


def _expected(graph: nx.DiGraph, failing: set[int]) -> dict[int, str]:
    """A job runs iff no ancestor is a failing job; then it fails iff it is failing."""
    out = {}
    for node in graph:
        if nx.ancestors(graph, node) & failing:
            out[node] = "upstream_failed"
        else:
            out[node] = "failed" if node in failing else "completed"
    return out


@pytest.fixture
def background_worker(queue):
    with Worker(queue.db_path, polling_interval=0.05, concurrency=2) as worker:
        yield worker


@PROPERTY_SETTINGS
@given(dag=random_dags())
def test_random_dags_with_random_failures(queue, background_worker, dag):
    parents, failing = dag
    wf = Workflow(f"random-{uuid.uuid4().hex[:8]}")
    jobs = []
    for i, ps in enumerate(parents):
        jobs.append(wf.add_task(dag_step, {"label": f"n{i}", "fail": i in failing},
                                depends_on=[jobs[p] for p in ps], name=f"n{i}",
                                max_attempts=1))
    run = wf.submit(queue)
    assert run.wait(timeout=20), run.status()

    graph = _graph(parents)
    rows = [queue.get_status(job.id) for job in jobs]
    status = {i: row["status"] for i, row in enumerate(rows)}
    # Every job ends terminal, exactly as the failures dictate.
    assert set(status.values()) <= TERMINAL
    assert status == _expected(graph, failing)
    failed = {i for i, s in status.items() if s == "failed"}
    upstream = {i for i, s in status.items() if s == "upstream_failed"}
    assert upstream == expected_upstream_failed(graph, failed)

    for i, row in enumerate(rows):
        if status[i] == "upstream_failed":
            assert row["executions"] == [] and row["attempts"] == 0  # never started
            root = next(j for j in failed if jobs[j].id in row["error"])
            assert root in nx.ancestors(graph, i)
            continue
        assert len(row["executions"]) == 1  # max_attempts=1
        for p in parents[i]:
            assert rows[p]["status"] == "completed"
            assert row["executions"][0]["started_at"] >= rows[p]["completed_at"], (
                f"n{i}'s execution is stamped before its parent n{p} completed")
        if status[i] == "completed":
            # No job started before all its parents completed: the body saw every
            # parent's stored result, and began after each parent's completed_at.
            result = row["result"]
            assert result["saw"] == [f"n{p}" for p in parents[i]]
            for p in parents[i]:
                assert result["started"] >= rows[p]["completed_at"], (
                    f"n{i} started before its parent n{p} completed")
    assert sorted(run.results()) == sorted(f"n{i}" for i, s in status.items()
                                           if s == "completed")


def _claim_timestamps_paused(store, pause_thread, stamped, go):
    """Make the claim on ``pause_thread`` stop right after it reads the clock."""
    claim = type(store).claim_row
    real_now = claim.__globals__["now_iso"]

    def called_from_claim() -> bool:
        frame = sys._getframe(2)
        for _ in range(6):  # the claim itself, or a helper it calls
            if frame is None:
                return False
            if frame.f_code is claim.__code__:
                return True
            frame = frame.f_back
        return False

    def now_iso():
        value = real_now()
        if (threading.current_thread() is pause_thread() and not stamped.is_set()
                and called_from_claim()):
            stamped.set()
            go.wait(5)
        return value

    return claim.__globals__, now_iso


def test_execution_started_at_is_never_before_the_parents_completed_at(queue, monkeypatch,
                                                                      make_worker):
    """The interleaving the random DAGs hit now and then, made deterministic: worker B
    reads the clock for a claim, the parent completes, then B's claim goes through."""
    key = f"stamp-{queue.db_path}"
    wf = Workflow("stamps")
    parent = wf.add_task(block_until_released, {"key": key}, name="parent", max_attempts=1)
    child = wf.add_task(identity, {"value": 2}, depends_on=[parent], name="child",
                        max_attempts=1)
    run = wf.submit(queue)
    worker_a, worker_b = make_worker(queue.db_path), make_worker(queue.db_path)
    thread_a = threading.Thread(target=worker_a.process_one, daemon=True)
    thread_a.start()
    assert event(f"{key}:started").wait(10)  # A runs the parent

    stamped, go = threading.Event(), threading.Event()
    threads: dict[str, threading.Thread] = {}
    namespace, patched = _claim_timestamps_paused(
        worker_b.store, lambda: threads.get("b"), stamped, go)
    monkeypatch.setitem(namespace, "now_iso", patched)
    threads["b"] = threading.Thread(target=worker_b.process_one, daemon=True)
    threads["b"].start()
    try:
        assert stamped.wait(5)  # B has read the clock for its claim
        event(f"{key}:release").set()  # the parent completes meanwhile...
        thread_a.join(1)  # ...unless B holds the write lock while it reads the clock
    finally:
        event(f"{key}:release").set()
        go.set()
        threads["b"].join(10)
        thread_a.join(10)
    monkeypatch.undo()
    drain(worker_b)  # if B found nothing ready, the child runs now
    assert run.wait(timeout=10)
    child_start = queue.get_status(child.id)["executions"][0]["started_at"]
    assert child_start >= queue.get_status(parent.id)["completed_at"]


def _flagged_workflow(tmp_path, parents, failing):
    flag_dir = tmp_path / uuid.uuid4().hex
    flag_dir.mkdir()
    for i in failing:
        (flag_dir / f"n{i}").touch()
    wf = Workflow(f"requeue-{flag_dir.name[:8]}")
    jobs = []
    for i, ps in enumerate(parents):
        jobs.append(wf.add_task(fail_if_flag, {"label": f"n{i}", "flag_dir": str(flag_dir)},
                                depends_on=[jobs[p] for p in ps], name=f"n{i}",
                                max_attempts=1))
    return wf, jobs, flag_dir


@st.composite
def requeue_plans(draw):
    """A random DAG, then which failing jobs get fixed and the order of the requeues."""
    parents, failing = draw(random_dags())
    fixed = draw(st.sets(st.sampled_from(sorted(failing)))) if failing else set()
    order = draw(st.permutations(sorted(failing)))
    return parents, failing, fixed, order


@PROPERTY_SETTINGS
@given(plan=requeue_plans())
def test_requeue_of_every_failed_job_ends_in_the_expected_state(queue, tmp_path, plan, make_worker):
    """Requeue all failed jobs (some fixed, some still failing) in a random order, then
    run: the final state is as if only the still-failing jobs had ever failed."""
    parents, failing, fixed, order = plan
    wf, jobs, flag_dir = _flagged_workflow(tmp_path, parents, failing)
    run = wf.submit(queue)
    worker = make_worker(queue.db_path)
    drain(worker)
    graph = _graph(parents)
    assert {i: queue.get_status(j.id)["status"] for i, j in enumerate(jobs)} == \
        _expected(graph, failing)

    for i in fixed:
        (flag_dir / f"n{i}").unlink()
    for i in order:
        if queue.get_status(jobs[i].id)["status"] == "failed":
            assert queue.requeue_job(jobs[i].id)
    drain(worker)
    assert run.done
    final = {i: queue.get_status(j.id)["status"] for i, j in enumerate(jobs)}
    assert final == _expected(graph, failing - fixed)


@PROPERTY_SETTINGS
@given(plan=requeue_plans())
# a=0 fails, x=1 fails; c=2 <- a; y=3 <- x; e=4 <- (c, y); a is fixed and requeued alone.
@example(plan=([[], [], [0], [1], [2, 3]], {0, 1}, {0}, [0]))
def test_after_each_requeue_upstream_failed_is_exactly_the_descendants_of_failed_jobs(
        queue, tmp_path, plan, make_worker):
    """Requeue some failed jobs one at a time (no worker running in between): after each
    requeue, upstream_failed == descendants(failed) - failed; then the run ends."""
    parents, failing, fixed, order = plan
    wf, jobs, flag_dir = _flagged_workflow(tmp_path, parents, failing)
    run = wf.submit(queue)
    worker = make_worker(queue.db_path)
    drain(worker)
    graph = _graph(parents)
    for i in fixed:
        (flag_dir / f"n{i}").unlink()
    for i in order:
        if i not in fixed or queue.get_status(jobs[i].id)["status"] != "failed":
            continue  # left failed on purpose, or never ran
        assert queue.requeue_job(jobs[i].id)
        status = {k: queue.get_status(j.id)["status"] for k, j in enumerate(jobs)}
        failed = {k for k, s in status.items() if s == "failed"}
        upstream = {k for k, s in status.items() if s == "upstream_failed"}
        assert upstream == expected_upstream_failed(graph, failed), status
    drain(worker)
    assert run.done, run.status()
    final = {i: queue.get_status(j.id)["status"] for i, j in enumerate(jobs)}
    assert final == _expected(graph, failing - fixed)
