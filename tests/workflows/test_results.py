"""Results between steps: parent_results (GigQ's id -> result, in dependency
order) and .by_name, run.results()/result()/failed(), and the pickle serializer on a
task, a job and a whole workflow."""

from __future__ import annotations

import pytest
from support import jobs
from support.workflows import finish

from gigq_flow import JobNotFoundError, JobStatus, ParentResults, Workflow
from gigq_flow.job import Job
from gigq_flow.store import sqlite_connection

pytestmark = pytest.mark.contract

# -- shapes ---------------------------------------------------------------------------------


def test_diamond_passes_results_by_id_in_dependency_order_and_by_name(queue):
    wf = Workflow("diamond")
    top = wf.add_task(jobs.identity, {"value": 3}, name="top")
    left = wf.add_task(jobs.double, {"x": 10}, depends_on=[top], name="left")
    right = wf.add_task(jobs.add, {"a": 1, "b": 1}, depends_on=[top], name="right")
    bottom = wf.add_task(jobs.takes_parent_results, depends_on=[right, left], name="bottom")
    run = finish(queue, wf.submit(queue))
    assert run.status()["counts"]["completed"] == 4
    assert run.result(bottom) == {
        "ids": [right.id, left.id],  # the order of depends_on, not of completion
        "values": [2, 20],
        "by_name": {"right": 2, "left": 20},
    }
    assert run.results() == {"top": 3, "left": 20, "right": 2, "bottom": run.result(bottom)}


def test_fan_out_every_child_receives_the_parent_result(queue):
    wf = Workflow("fan-out")
    root = wf.add_task(jobs.identity, {"value": 7}, name="root")
    children = [wf.add_task(jobs.gigq_style, {"x": i}, depends_on=[root], name="child")
                for i in range(5)]
    run = finish(queue, wf.submit(queue), concurrency=3)
    assert [run.result(child) for child in children] == [7, 8, 9, 10, 11]
    # Several tasks share the name "child": results() gives a list, in submission order.
    assert run.results() == {"root": 7, "child": [7, 8, 9, 10, 11]}
    assert run.status()["tasks"] == {"root": "completed", "child": ["completed"] * 5}


def test_fan_in_collects_every_parent_and_groups_shared_names(queue):
    wf = Workflow("fan-in")
    parts = [wf.add_task(jobs.identity, {"value": i * i}, name="part") for i in range(4)]
    extra = wf.add_task(jobs.identity, {"value": 100}, name="extra")
    total = wf.add_task(jobs.sum_parents, depends_on=[*parts, extra], name="total")
    seen = wf.add_task(jobs.takes_parent_results, depends_on=[extra, *parts], name="seen")
    run = finish(queue, wf.submit(queue), concurrency=3)
    assert run.result(total) == 0 + 1 + 4 + 9 + 100
    assert run.result(seen) == {
        "ids": [extra.id, *(p.id for p in parts)],
        "values": [100, 0, 1, 4, 9],
        "by_name": {"extra": 100, "part": [0, 1, 4, 9]},
    }


def test_parent_results_is_a_dict_with_by_name():
    results = ParentResults([("id-1", "load", 1), ("id-2", "clean", 2), ("id-3", "load", 3)])
    assert isinstance(results, dict)
    assert list(results.items()) == [("id-1", 1), ("id-2", 2), ("id-3", 3)]
    assert results.by_name == {"load": [1, 3], "clean": 2}


def test_gigq_code_that_reads_parent_results_as_a_dict_keeps_working(queue):
    wf = Workflow("gigq")
    a = wf.add_task(jobs.identity, {"value": 1}, name="a")
    b = wf.add_task(jobs.identity, {"value": 2}, name="b")
    c = wf.add_task(jobs.gigq_style, {"x": 10}, depends_on=[a, b], name="c")
    run = finish(queue, wf.submit(queue))
    assert run.result(c) == 13


def test_pass_parent_results_false_keeps_them_out(queue):
    wf = Workflow("explicit")
    a = wf.add_task(jobs.identity, {"value": 1}, name="a")
    b = wf.add_task(jobs.echo_params, {"k": 1}, depends_on=[a], pass_parent_results=False)
    c = wf.add_task(jobs.echo_params, {"k": 2}, depends_on=[a], name="c")
    run = finish(queue, wf.submit(queue))
    assert run.result(b) == {"k": 1}
    assert run.result(c) == {"k": 2}  # **kwargs receives them; echo_params drops them


def test_results_result_and_failed(queue):
    wf = Workflow("mixed")
    ok = wf.add_task(jobs.identity, {"value": {"rows": [1, 2]}}, name="ok")
    bad = wf.add_task(jobs.fail, {"message": "disk full"}, name="bad", max_attempts=1)
    after = wf.add_task(jobs.identity, {"value": 1}, depends_on=[bad], name="after")
    run = finish(queue, wf.submit(queue))
    assert run.results() == {"ok": {"rows": [1, 2]}}  # only completed jobs
    assert run.result(ok) == {"rows": [1, 2]}
    assert run.result(ok.id) == {"rows": [1, 2]}
    assert run.result(bad) is None and run.result(after) is None
    failed = {entry["name"]: entry for entry in run.failed()}
    assert set(failed) == {"bad", "after"}
    assert failed["bad"]["status"] == "failed" and failed["bad"]["id"] == bad.id
    assert "RuntimeError: disk full" in failed["bad"]["error"]
    assert failed["after"]["status"] == JobStatus.UPSTREAM_FAILED.value
    assert bad.id in failed["after"]["error"] and "'bad'" in failed["after"]["error"]
    with pytest.raises(JobNotFoundError):
        run.result("not-a-job-of-this-run")
    with pytest.raises(KeyError):
        run.result(Job(name="stranger", function=jobs.identity, params={"value": 0}))


def test_results_are_read_a_batch_at_a_time_in_submission_order(queue, monkeypatch):
    monkeypatch.setattr(sqlite_connection, "STREAM_ROWS", 2)
    wf = Workflow("batches")
    for i in range(5):
        wf.add_task(jobs.identity, {"value": i}, name="step")
    wf.add_task(jobs.identity, {"value": "last"}, name="last")
    run = finish(queue, wf.submit(queue))
    assert run.results() == {"step": [0, 1, 2, 3, 4], "last": "last"}


# -- serializers ----------------------------------------------------------------------------


def test_pickle_on_a_task(queue):
    """@task(serializer="pickle") returns a set; its JSON child reads it by name."""
    wf = Workflow("pickle-task")
    numbers = wf.add_task(jobs.pickled_set, {"n": 3})
    kinds = wf.add_task(jobs.type_names, depends_on=[numbers], name="kinds")
    run = finish(queue, wf.submit(queue))
    assert queue.get_status(numbers.id)["serializer"] == "pickle"
    assert queue.get_status(kinds.id)["serializer"] == "json"
    assert run.result(numbers) == {0, 1, 2}
    assert run.results() == {"pickled_set": {0, 1, 2}, "kinds": {"pickled_set": "set"}}
    assert queue.get_status(numbers.id)["result"] == {0, 1, 2}
    [execution] = queue.get_status(numbers.id)["executions"]
    assert execution["result"] == {0, 1, 2}


def test_pickle_on_a_job_round_trips_results_and_parent_results(queue):
    wf = Workflow("pickle-job")
    rich = wf.add_job(Job(name="rich", function=jobs.make_rich, params={"n": 2},
                          serializer="pickle"))
    echo = wf.add_job(Job(name="echo", function=jobs.describe_parents, serializer="pickle"),
                      depends_on=[rich])
    run = finish(queue, wf.submit(queue))
    expected = {"set": {0, 1}, "tuple": (2, "x"), "frozen": frozenset({2}),
                "point": jobs.Point(2, -2)}
    assert run.result(rich) == expected
    assert run.result(echo) == {"rich": expected}
    assert isinstance(run.result(echo)["rich"]["tuple"], tuple)
    assert isinstance(run.result(echo)["rich"]["point"], jobs.Point)


def test_pickle_on_the_whole_workflow_params_results_and_parent_results(queue):
    wf = Workflow("pickle-workflow", serializer="pickle")
    params = {"tags": {"a", "b"}, "pair": (1, 2), "point": jobs.Point(1, 2)}
    source = wf.add_task(jobs.echo_params, params, name="source")
    count = wf.add_task(jobs.make_set, {"items": (1, 1, 2)}, name="count")
    wf.add_task(jobs.describe_parents, depends_on=[source, count], name="sink")
    assert {job.serializer for job in wf.jobs} == {"pickle"}
    run = finish(queue, wf.submit(queue))
    assert queue.get_status(source.id)["params"] == params
    assert run.result(source) == params
    assert isinstance(run.result(source)["pair"], tuple)
    assert run.results() == {"source": params, "count": {1, 2},
                             "sink": {"source": params, "count": {1, 2}}}


def test_a_json_job_returning_a_set_fails_with_a_hint_to_use_pickle(queue):
    wf = Workflow("json-set")
    bad = wf.add_task(jobs.make_set, {"items": [1, 2]}, name="bad", max_attempts=3)
    after = wf.add_task(jobs.identity, {"value": 1}, depends_on=[bad], name="after")
    run = finish(queue, wf.submit(queue))
    row = queue.get_status(bad.id)
    assert row["status"] == "failed"
    assert row["attempts"] == 1  # deterministic: not retried
    assert "set" in row["error"] and "pickle" in row["error"]
    assert queue.get_status(after.id)["status"] == "upstream_failed"
    assert run.done


def test_invalid_workflow_serializer_is_refused():
    with pytest.raises(ValueError, match="serializer"):
        Workflow("w", serializer="yaml")
