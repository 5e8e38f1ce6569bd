"""Maps in ``workflow status`` (a map's row counts its items, ``--items`` lists them,
``--json`` carries the map and tag fields), ``submit --tag``, and ``limits`` / ``limits
set`` / ``limits clear``, run against real files (in this process, one test as
subprocesses: see support.cli)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from support import jobs
from support.cli import assert_usage_error, cli, drain_by_command, ok, ok_json, submitted_id
from support.workflows import finish

import gigq_flow


def submit_map(db: Path, values: dict, **map_options) -> gigq_flow.WorkflowRun:
    """numbers -> square (a map over its list) -> total."""
    workflow = gigq_flow.Workflow("squares")
    numbers = workflow.add_task(jobs.numbers, params=values)
    squares = workflow.map(jobs.square, over=numbers, **map_options)
    workflow.add_task(jobs.total, depends_on=[squares])
    queue = gigq_flow.JobQueue(db)
    try:
        return workflow.submit(queue)
    finally:
        queue.close()


def rows_of(out: str) -> list[str]:
    """The table's rows: the lines after the rule under the header."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("─"))
    return [line.rstrip() for line in lines[start + 1:] if line.strip()]


# -- maps in workflow status ----------------------------------------------------------------
def test_a_maps_row_counts_its_items_and_lists_those_that_failed(db):
    run = submit_map(db, {"n": 3, "extra": "x"}, max_attempts=1)  # "x" * "x" fails
    before = ok(cli(db, "workflow", "status", run.id))
    assert "square (map: not expanded yet)" in before

    assert drain_by_command(db) == 6  # numbers, the map's expansion, its 4 items
    result = cli(db, "workflow", "status", run.id)
    rows = rows_of(ok(result))
    assert [row.split()[0] for row in rows] == ["numbers", "square", "square[3]", "total"]
    assert "square (map ×4: 3 done, 1 failed)" in rows[1] and "upstream_failed" in rows[1]
    assert rows[2].startswith("  square[3]") and "failed" in rows[2]
    assert "TypeError" in rows[2]  # its error, to act on

    every = rows_of(ok(cli(db, "workflow", "status", run.id, "--items")))
    assert [row.split()[0] for row in every] == [
        "numbers", "square", "square[0]", "square[1]", "square[2]", "square[3]", "total"]
    assert all(row.startswith("  square[") for row in every[2:6])


def test_status_json_carries_map_and_tag_fields(db):
    run = submit_map(db, {"n": 5}, max_active=2, tags=["cpu"])
    queue = gigq_flow.JobQueue(db)
    try:
        finish(queue, run)
        assert run.results()["total"] == 30
    finally:
        queue.close()
    status = ok_json(cli(db, "workflow", "status", run.id, "--json"))
    assert status["succeeded"] and status["total"] == 8
    by_name = {job["name"]: job for job in status["jobs"]}
    square = by_name["square"]
    assert (square["item_param"], square["map_size"], square["map_of"], square["tags"]) == \
        ("item", 5, None, ["cpu"])
    assert by_name["numbers"]["tags"] == [] and by_name["numbers"]["map_size"] is None
    for index in range(5):
        item = by_name[f"square[{index}]"]
        assert (item["map_of"], item["map_index"], item["item_param"]) == \
            (square["id"], index, None)
        assert item["tags"] == ["cpu", f"map:{square['id']}"]
    assert status["maps"] == [{
        "id": square["id"], "name": "square", "item_param": "item", "size": 5,
        "status": "completed", "counts": {"completed": 5}, "progress": "map ×5: 5 done"}]

    rows = rows_of(ok(cli(db, "workflow", "status", run.id)))
    assert len(rows) == 3 and "square (map ×5: 5 done)" in rows[1]
    assert "8/8 finished; 8 completed" in ok(cli(db, "workflow", "status", run.id))


# -- submit --tag and limits ------------------------------------------------------------------
def test_limits_round_trip(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=2",
                              "--tag", "gpu", "--tag", "io", "--tag", "gpu"))
    assert ok_json(cli(db, "status", job_id, "--json"))["tags"] == ["gpu", "io"]
    assert "Tags: gpu, io" in ok(cli(db, "status", job_id))
    assert ok(cli(db, "limits")).strip() == (
        "No limits: any number of jobs of every tag may run at once.")
    assert ok_json(cli(db, "limits", "--json")) == []

    assert ok(cli(db, "limits", "set", "gpu", "2")).strip() == (
        "Limit set: at most 2 jobs tagged 'gpu' run at once.")
    assert ok_json(cli(db, "limits", "set", "io", "1", "--json")) == {
        "tag": "io", "max_running": 1, "previous": None}
    assert ok_json(cli(db, "limits", "set", "gpu", "3", "--json")) == {
        "tag": "gpu", "max_running": 3, "previous": 2}
    assert ok_json(cli(db, "limits", "--json")) == [
        {"tag": "gpu", "max_running": 3, "running": 0},
        {"tag": "io", "max_running": 1, "running": 0}]
    rows = rows_of(ok(cli(db, "limits")))
    assert [row.split() for row in rows] == [["gpu", "3", "0"], ["io", "1", "0"]]

    assert ok_json(cli(db, "limits", "clear", "gpu", "--json")) == {
        "tag": "gpu", "removed": True, "previous": 3}
    assert ok(cli(db, "limits", "clear", "io")).strip() == (
        "Limit removed: jobs tagged 'io' run without a limit (it was 1).")
    assert ok(cli(db, "limits", "clear", "io")).strip() == "No limit on tag 'io'; nothing changed."
    assert ok_json(cli(db, "limits", "clear", "io", "--json"))["removed"] is False
    assert ok_json(cli(db, "limits", "--json")) == []
    assert drain_by_command(db) == 1  # the tagged job ran, limits or not


@pytest.mark.usefixtures("cli_subprocesses")
def test_limits_counts_the_running_jobs_of_each_tag(db, make_worker):
    queue = gigq_flow.JobQueue(db)
    keys = [f"limits-{uuid.uuid4()}" for _ in range(2)]
    try:
        ok(cli(db, "limits", "set", "gpu", "1"))
        ids = [queue.submit(gigq_flow.Job(f"held-{i}", jobs.block_until_released,
                                          params={"key": key}, tags=["gpu"]))
               for i, key in enumerate(keys)]
        make_worker(db, concurrency=2, polling_interval=0.05).start_background()
        assert jobs.event(f"{keys[0]}:started").wait(10)
        assert ok_json(cli(db, "limits", "--json")) == [
            {"tag": "gpu", "max_running": 1, "running": 1}]
        assert queue.status_of(ids[1]) == "pending"  # the limit holds it back
        ok(cli(db, "limits", "clear", "gpu"))
        assert jobs.event(f"{keys[1]}:started").wait(10)  # and clearing frees it
    finally:
        for key in keys:
            jobs.event(f"{key}:release").set()
        queue.close()


@pytest.mark.parametrize(("args", "fragments"), [
    (("set", "gpu", "0"), ("N must be an integer >= 1", "got '0'", "limits clear gpu")),
    (("set", "gpu", "-1"), ("N must be an integer >= 1", "got '-1'")),
    (("set", "gpu", "2.5"), ("N must be an integer >= 1", "got '2.5'")),
    (("set", "gpu", "many"), ("N must be an integer >= 1", "got 'many'")),
    (("set", "", "2"), ("tag '' is empty", "non-empty, one-line string")),
    (("set", "  ", "2"), ("is empty or spans lines",)),
    (("set", "gpu"), ("required", "N")),
    (("clear", ""), ("tag '' is empty",)),
])
def test_bad_limits_are_usage_errors_that_write_nothing(db, args, fragments):
    assert_usage_error(cli(db, "limits", *args), *fragments)
    assert not db.exists()  # not even an empty queue
    gigq_flow.JobQueue(db).set_limit("gpu", 4)
    assert_usage_error(cli(db, "limits", *args), *fragments)
    queue = gigq_flow.JobQueue(db)
    try:
        assert queue.limits() == {"gpu": 4}
    finally:
        queue.close()


def test_submit_refuses_an_empty_tag_and_writes_nothing(db):
    assert_usage_error(cli(db, "submit", "support.jobs.noop", "--tag", ""),
                       "tags of job 'noop'", "non-empty, one-line strings")
    assert not db.exists()


def test_limits_of_a_missing_queue_is_a_usage_error(db):
    assert_usage_error(cli(db, "limits"), "no queue at", "does not exist")
    assert_usage_error(cli(db, "limits", "clear", "gpu"), "no queue at")
    assert not db.exists()
