"""Maps (``Workflow.map``) on every backend: a step run once per element of its parent's
list, its results collected in input order, failures and requeues, nesting, the cache,
cancels, and a map of a thousand items."""

from __future__ import annotations

from datetime import datetime

import pytest
from support import jobs
from support.helpers import lines
from support.workflows import finish, statuses

from gigq_flow import JobQueue, Workflow, WorkflowRun

pytestmark = pytest.mark.contract


def squares(n: int, **map_options) -> Workflow:
    """numbers(n) -> square (a map, offset 1) -> total (the sum of its list)."""
    wf = Workflow("squares")
    over = wf.add_task(jobs.numbers, params={"n": n}, name="numbers")
    mapped = wf.map(jobs.square, over=over, params={"offset": 1}, **map_options)
    wf.add_task(jobs.sum_of, params={"name": mapped.name}, depends_on=[mapped], name="total")
    return wf


def items_of(queue: JobQueue, map_id: str) -> list[dict]:
    """The item rows of a map, by their place in the list."""
    rows = [row for row in queue.list_jobs(limit=100_000) if row["map_of"] == map_id]
    return sorted(rows, key=lambda row: row["map_index"])


# -- results --------------------------------------------------------------------------------
def test_results_come_in_input_order_though_the_items_finish_out_of_order(queue):
    wf = squares(20)
    run = finish(queue, wf.submit(queue), concurrency=4)

    expected = [i * i + 1 for i in range(20)]
    assert run.results()["square"] == expected
    assert run.results()["total"] == sum(expected)
    items = items_of(queue, wf.jobs[1].id)
    assert [row["map_index"] for row in items] == list(range(20))
    assert [queue.get_result(row["id"]) for row in items] == expected
    finished = sorted(items, key=lambda row: datetime.fromisoformat(row["completed_at"]))
    assert [row["map_index"] for row in finished] != list(range(20))  # random sleeps


def test_dependents_get_the_list_through_parent_results_by_name(queue):
    wf = Workflow("by-name")
    over = wf.add_task(jobs.numbers, params={"n": 5}, name="numbers")
    mapped = wf.map(jobs.square, over=over, name="squares")
    child = wf.add_task(jobs.takes_parent_results, depends_on=[over, mapped], name="child")
    run = finish(queue, wf.submit(queue), concurrency=4)

    seen = run.result(child)
    assert seen["by_name"] == {"numbers": [0, 1, 2, 3, 4], "squares": [0, 1, 4, 9, 16]}
    assert seen["ids"] == [over.id, mapped.id]


def test_items_are_named_by_their_place_and_results_holds_the_list(queue):
    wf = squares(3, name="sq")
    run = finish(queue, wf.submit(queue))

    results = run.results()
    assert results["sq"] == [1, 2, 5]
    assert {name: results[name] for name in ("sq[0]", "sq[1]", "sq[2]")} == {
        "sq[0]": 1, "sq[1]": 2, "sq[2]": 5}
    assert "sq[3]" not in results
    mapped = queue.get_status(wf.jobs[1].id)
    assert (mapped["name"], mapped["map_param"], mapped["map_size"]) == ("sq", "item", 3)
    assert run.status()["total"] == 6  # numbers, the map, its three items, total


def test_a_map_over_a_maps_result(queue):
    wf = Workflow("nested")
    over = wf.add_task(jobs.numbers, params={"n": 4}, name="numbers")
    first = wf.map(jobs.square, over=over, name="once")
    second = wf.map(jobs.square, over=first, params={"offset": 1}, name="twice")
    wf.add_task(jobs.sum_of, params={"name": "twice"}, depends_on=[second], name="total")
    run = finish(queue, wf.submit(queue), concurrency=4)

    results = run.results()
    assert results["once"] == [0, 1, 4, 9]
    assert results["twice"] == [1, 2, 17, 82]
    assert [results[f"twice[{i}]"] for i in range(4)] == [1, 2, 17, 82]
    assert results["total"] == 102
    assert [row["params"] for row in items_of(queue, second.id)] == [
        {"offset": 1, "item": value} for value in (0, 1, 4, 9)]


def test_an_empty_list_completes_the_map_with_an_empty_list_and_its_dependents_run(queue):
    wf = squares(0)
    run = finish(queue, wf.submit(queue))

    assert run.results() == {"numbers": [], "square": [], "total": 0}
    assert items_of(queue, wf.jobs[1].id) == []
    assert queue.get_status(wf.jobs[1].id)["map_size"] is None


def test_a_result_that_is_not_a_list_fails_the_map_for_good_writing_no_item(queue):
    wf = Workflow("not-a-list")
    over = wf.add_task(jobs.not_a_list, name="not_a_list")
    mapped = wf.map(jobs.square, over=over, name="square", max_attempts=3)
    child = wf.add_task(jobs.sum_of, params={"name": "square"}, depends_on=[mapped],
                        name="total")
    run = finish(queue, wf.submit(queue))

    assert statuses(queue, wf.jobs) == {
        "not_a_list": "completed", "square": "failed", "total": "upstream_failed"}
    status = queue.get_status(mapped.id)
    assert status["error"] == ("map 'square' maps over the result of 'not_a_list', which is "
                               "a dict, not a list; make 'not_a_list' return a list")
    assert status["attempts"] == 1 and status["map_size"] is None
    assert items_of(queue, mapped.id) == []
    assert run.status()["total"] == 3
    assert queue.get_status(child.id)["status"] == "upstream_failed"


def test_an_item_failing_for_good_fails_the_map_upstream_and_its_requeue_completes_it(
        queue, tmp_path):
    release = tmp_path / "release"
    wf = Workflow("requeue")
    over = wf.add_task(jobs.numbers, params={"n": 5}, name="numbers")
    mapped = wf.map(jobs.square_unless_blocked, over=over, name="square", max_attempts=1,
                    params={"blocked": [3], "release": str(release)})
    wf.add_task(jobs.sum_of, params={"name": "square"}, depends_on=[mapped], name="total")
    run = finish(queue, wf.submit(queue), concurrency=4)

    items = items_of(queue, mapped.id)
    assert [row["status"] for row in items] == ["completed"] * 3 + ["failed", "completed"]
    assert "item 3 is blocked" in items[3]["error"]
    assert statuses(queue, wf.jobs) == {
        "numbers": "completed", "square": "upstream_failed", "total": "upstream_failed"}

    release.touch()
    assert queue.requeue_job(items[3]["id"])
    assert statuses(queue, wf.jobs) == {
        "numbers": "completed", "square": "pending", "total": "pending"}
    finish(queue, run)
    assert run.results()["square"] == [0, 1, 4, 9, 16]
    assert run.results()["total"] == 30
    assert len(items_of(queue, mapped.id)) == 5  # the requeue expanded nothing again


# -- options --------------------------------------------------------------------------------
def test_each_item_gets_the_maps_max_attempts(queue, tmp_path):
    counters = [str(tmp_path / f"counter-{i}") for i in range(3)]
    wf = Workflow("attempts")
    over = wf.add_task(jobs.identity, params={"value": counters}, name="counters")
    mapped = wf.map(jobs.fail_n_times, over=over, params={"n": 2}, item_param="counter_path",
                    name="flaky", max_attempts=3, retry_delay=0)
    run = finish(queue, wf.submit(queue), concurrency=3)

    assert run.results()["flaky"] == ["ok"] * 3
    items = items_of(queue, mapped.id)
    assert [(row["attempts"], row["max_attempts"]) for row in items] == [(3, 3)] * 3
    assert [len(queue.get_status(row["id"])["executions"]) for row in items] == [3] * 3
    assert all(lines(path) == ["3"] for path in counters)


def test_each_item_gets_the_maps_timeout_and_tags(queue):
    wf = Workflow("timeouts")
    over = wf.add_task(jobs.identity, params={"value": [0.01, 2.5, 0.02]}, name="durations")
    mapped = wf.map(jobs.sleep_for, over=over, item_param="seconds", name="sleep",
                    timeout=1, max_attempts=1, tags=["slow", "io"], priority=4)
    finish(queue, wf.submit(queue), concurrency=3)

    items = items_of(queue, mapped.id)
    assert [row["status"] for row in items] == ["completed", "timeout", "completed"]
    assert [row["timeout"] for row in items] == [1] * 3
    assert [row["tags"] for row in items] == [["slow", "io"]] * 3
    assert [row["priority"] for row in items] == [4] * 3
    assert queue.get_status(mapped.id)["status"] == "upstream_failed"


# -- the cache ------------------------------------------------------------------------------
def labelled(labels: list[str], log) -> Workflow:
    """labels -> record (a map appending each label to ``log`` when it really runs)."""
    wf = Workflow("labels")
    over = wf.add_task(jobs.identity, params={"value": labels}, name="labels")
    wf.map(jobs.record_call, over=over, params={"log_path": str(log)}, item_param="label",
           name="record")
    return wf


def test_a_second_run_reuses_the_items_and_a_longer_list_runs_only_the_new_ones(
        queue, tmp_path):
    log = tmp_path / "calls.log"
    first = finish(queue, labelled(["a", "b", "c"], log).submit(queue, cache=True))
    again = finish(queue, labelled(["a", "b", "c"], log).submit(queue, cache=True))

    assert sorted(lines(log)) == ["a", "b", "c"]  # the second run called nothing
    assert again.results()["record"] == first.results()["record"] == ["a", "b", "c"]
    reasons = again.explain()
    assert [reasons[f"record[{i}]"] for i in range(3)] == [f"cached (from run {first.id})"] * 3
    first_items = {job.name: job.id for job in first.snapshot().jobs}
    for job in again.snapshot().jobs:
        if job.name.startswith("record["):
            assert job.cached_from == first_items[job.name]

    longer = finish(queue, labelled(["a", "b", "c", "d", "e"], log).submit(queue, cache=True))
    assert sorted(lines(log)) == ["a", "b", "c", "d", "e"]
    assert longer.results()["record"] == ["a", "b", "c", "d", "e"]
    reasons = longer.explain()
    assert [reasons[f"record[{i}]"] for i in range(3)] == [f"cached (from run {first.id})"] * 3
    assert [reasons[f"record[{i}]"] for i in (3, 4)] == ["ran: no earlier result"] * 2


# -- cancel, size ----------------------------------------------------------------------------
def test_cancelling_the_run_cancels_its_items(queue, db_path, make_worker, request):
    keys = [f"{request.node.nodeid}:{i}" for i in range(5)]
    wf = Workflow("cancel")
    over = wf.add_task(jobs.identity, params={"value": keys}, name="keys")
    mapped = wf.map(jobs.block_until_released, over=over, item_param="key", name="hold")
    wf.add_task(jobs.noop, depends_on=[mapped], name="after")
    run: WorkflowRun = wf.submit(queue)
    worker = make_worker(db_path, polling_interval=0.05, concurrency=2)
    worker.start_background()
    try:
        for key in keys[:2]:
            assert jobs.event(f"{key}:started").wait(20), key
        assert run.cancel() == 7  # the map, its five items and its dependent
    finally:
        for key in keys:
            jobs.event(f"{key}:release").set()
    assert run.wait(20)

    assert statuses(queue, wf.jobs) == {
        "keys": "completed", "hold": "cancelled", "after": "cancelled"}
    assert [row["status"] for row in items_of(queue, mapped.id)] == ["cancelled"] * 5
    assert not any(jobs.event(f"{key}:started").is_set() for key in keys[2:])


def test_a_map_of_a_thousand_items_expands_and_completes(queue):
    wf = Workflow("thousand")
    over = wf.add_task(jobs.numbers, params={"n": 1000}, name="numbers")
    mapped = wf.map(jobs.identity, over=over, item_param="value", name="same")
    wf.add_task(jobs.sum_of, params={"name": "same"}, depends_on=[mapped], name="total")
    run = finish(queue, wf.submit(queue), concurrency=4, timeout=300)

    assert run.results()["same"] == list(range(1000))
    assert run.results()["total"] == sum(range(1000))
    assert queue.get_status(mapped.id)["map_size"] == 1000
    assert {s: n for s, n in run.status()["counts"].items() if n} == {"completed": 1003}
