"""The code of steps shipped by value (closures, lambdas, ``__main__`` functions): stored
once per digest while a job references it, dropped by ``clear_completed`` when none
does, and found again by ``WorkflowRun.rerun()``."""

from __future__ import annotations

import pytest
from support import jobs
from support.db import rows
from support.helpers import drain

from gigq_flow import Workflow, shipping

pytestmark = pytest.mark.contract


def stored_code(db_path) -> set[str]:
    return {row["digest"] for row in rows(db_path, "SELECT digest FROM step_code")}


def code_of(db_path, job) -> str:
    [(digest,)] = rows(db_path, "SELECT code_digest FROM jobs WHERE id = ?", (job.id,))
    return digest


def code_by_name(db_path, run) -> dict[str, str]:
    return {row["name"]: row["code_digest"] for row in rows(
        db_path, "SELECT name, code_digest FROM jobs WHERE workflow_id = ?", (run.id,))}


def test_clearing_drops_the_code_no_job_references_any_more(queue, db_path, make_worker):
    factor = 2

    def scale(x):
        return x * factor

    first, second = Workflow("first"), Workflow("second")
    shared_first = first.add_task(scale, {"x": 1}, name="scale")
    own = first.add_task(lambda: "first only", name="own")
    first.add_task(jobs.identity, {"value": 0}, name="by name")
    shared_second = second.add_task(scale, {"x": 2}, name="scale")
    first_run = first.submit(queue)
    shared, only_first = code_of(db_path, shared_first), code_of(db_path, own)
    second_run = second.submit(queue)
    assert code_of(db_path, shared_second) == shared  # one function, its code stored once
    assert stored_code(db_path) == {shared, only_first}

    worker = make_worker(db_path)
    assert worker.process_one() and worker.process_one() and worker.process_one()
    assert first_run.done and not second_run.done  # the second's step still needs the code
    assert queue.clear_completed() == 3
    assert stored_code(db_path) == {shared}

    assert drain(worker) == 1
    assert second_run.results() == {"scale": 4}
    assert queue.clear_completed() == 1
    assert stored_code(db_path) == set()


def test_clearing_one_of_two_finished_runs_keeps_their_shared_code(queue, db_path,
                                                                  make_worker):
    offset = 10

    def shift(x):
        return x + offset

    runs = []
    for x in (1, 2):
        wf = Workflow(f"run {x}")
        wf.add_task(shift, {"x": x}, name="shift")
        runs.append(wf.submit(queue))
        assert drain(make_worker(db_path)) == 1
    assert [run.results() for run in runs] == [{"shift": 11}, {"shift": 12}]
    [older] = runs[0].snapshot().jobs
    [newer] = runs[1].snapshot().jobs
    (digest,) = stored_code(db_path)
    # Clear only the older run's job: completed before the newer one completed.
    assert queue.clear_completed(before_timestamp=newer.completed_at) == 1
    assert queue.get_status(older.id) == {"exists": False}
    assert stored_code(db_path) == {digest}
    assert queue.clear_completed() == 1
    assert stored_code(db_path) == set()


def test_rerun_of_a_run_shipped_by_value_runs_in_a_worker_of_this_process(
        queue, db_path, make_worker, tmp_path):
    counter = tmp_path / "attempts"
    base = 5

    def flaky(value):  # fails on its first call only
        calls = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(calls + 1))
        if calls == 0:
            raise RuntimeError("first call fails")
        return value + base

    wf = Workflow("shipped")
    first = wf.add_task(lambda: base, name="base")
    wf.add_task(flaky, {"value": 1}, depends_on=[first], name="flaky", max_attempts=1,
                pass_parent_results=False)
    run = wf.submit(queue)
    worker = make_worker(db_path, polling_interval=0.1)
    worker.start_background()
    assert run.wait(timeout=30)
    assert run.status()["counts"]["failed"] == 1

    again = run.rerun(cache=False)
    assert again.wait(timeout=30)
    assert again.results() == {"base": 5, "flaky": 6}
    shipped = code_by_name(db_path, run)
    assert None not in shipped.values() and code_by_name(db_path, again) == shipped


@pytest.mark.parametrize("allow_pickle", [True, False])
def test_rerun_reads_the_stored_code_in_a_worker_that_did_not_ship_it(
        queue, db_path, make_worker, monkeypatch, allow_pickle):
    wf = Workflow("shipped elsewhere")
    wf.add_task(lambda: "ran", name="step")
    run = wf.submit(queue)
    assert drain(make_worker(db_path)) == 1
    monkeypatch.setattr(shipping, "_shipped", {})  # as if another process had shipped it
    again = run.rerun(cache=False)
    assert drain(make_worker(db_path, allow_pickle=allow_pickle)) == 1
    [job] = again.snapshot().jobs
    status = queue.get_status(job.id)
    if allow_pickle:
        assert (status["status"], status["result"]) == ("completed", "ran")
    else:
        assert status["status"] == "failed" and "allow_pickle=True" in status["error"]
