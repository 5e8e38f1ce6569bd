"""Maps, tags and limits through the MCP tools as plain functions, on every backend: a
``map_over`` step runs end to end, the status tool reports a map's progress (its items
grouped unless asked for), tags go with jobs and steps, and ``gigq_set_limit`` /
``gigq_list_limits`` cap and count the running jobs of a tag."""

from __future__ import annotations

import uuid

import pytest
from support import jobs

from gigq_flow.mcp import limit_tools, tools, worker_tool, workflow_tools

pytestmark = pytest.mark.contract


def submit(db: str, *steps: dict) -> dict:
    submitted = workflow_tools.submit_workflow("squares", list(steps), db_path=db)
    assert submitted["success"], submitted
    return submitted


def test_a_map_step_runs_end_to_end_and_reports_its_progress(db_path):
    db = str(db_path)
    submitted = submit(
        db,
        {"id": "sum", "function": "support.jobs.total", "depends_on": ["sq"]},
        {"id": "sq", "function": "support.jobs.square", "map_over": "nums", "max_active": 2,
         "tags": ["cpu"]},
        {"id": "nums", "function": "support.jobs.numbers", "params": {"n": 4}},
    )
    ids = submitted["step_id_to_job_id"]
    workflow_id = submitted["workflow_id"]
    waiting = workflow_tools.get_workflow_status(workflow_id, db_path=db)
    assert waiting["maps"][0]["progress"] == "map: not expanded yet"
    assert waiting["maps"][0]["size"] is None and waiting["items_hidden"] == 0

    ran = worker_tool.run_worker(seconds=30, concurrency=3, db_path=db)
    assert ran["stopped_because"] == "no_pending_jobs", ran
    results = workflow_tools.get_workflow_results(workflow_id, db_path=db)["results"]
    assert results["square"] == [0, 1, 4, 9] and results["total"] == 14

    status = workflow_tools.get_workflow_status(workflow_id, db_path=db)
    assert status["succeeded"] and status["total"] == 7 and status["items_hidden"] == 4
    assert [job["id"] for job in status["jobs"]] == [ids["nums"], ids["sq"], ids["sum"]]
    assert status["edges"] == [[ids["nums"], ids["sq"]], [ids["sq"], ids["sum"]]]
    assert status["maps"] == [{
        "id": ids["sq"], "name": "square", "item_param": "item", "size": 4,
        "status": "completed", "counts": {"completed": 4}, "progress": "map ×4: 4 done"}]
    square = status["jobs"][1]
    assert (square["map_size"], square["item_param"], square["tags"]) == (4, "item", ["cpu"])

    every = workflow_tools.get_workflow_status(workflow_id, db_path=db, items=True)
    assert every["items_hidden"] == 0 and len(every["jobs"]) == 7
    items = [job for job in every["jobs"] if job["map_of"] == ids["sq"]]
    assert [(job["name"], job["map_index"]) for job in items] == [
        (f"square[{i}]", i) for i in range(4)]
    assert all(job["tags"] == ["cpu", f"map:{ids['sq']}"] for job in items)
    assert [ids["sq"], ids["sum"]] in every["edges"]
    assert limit_tools.list_limits(db_path=db)["limits"] == []  # max_active's, gone


def test_a_map_step_takes_params_and_its_own_item_param(db_path):
    db = str(db_path)
    submitted = submit(
        db, {"id": "nums", "function": "support.jobs.numbers", "params": {"n": 3}},
        {"id": "plus", "function": "support.jobs.add", "map_over": "nums", "item_param": "a",
         "params": {"b": 10}, "name": "plus-ten"},
    )
    worker_tool.run_worker(seconds=30, db_path=db)
    results = workflow_tools.get_workflow_results(submitted["workflow_id"], db_path=db)
    assert results["results"]["plus-ten"] == [10, 11, 12]


def test_an_item_that_failed_is_listed_under_its_map(db_path):
    db = str(db_path)
    submitted = submit(
        db, {"id": "nums", "function": "support.jobs.numbers", "params": {"n": 2, "extra": "x"}},
        {"id": "sq", "function": "support.jobs.square", "map_over": "nums"},
    )
    worker_tool.run_worker(seconds=30, db_path=db)
    status = workflow_tools.get_workflow_status(submitted["workflow_id"], db_path=db)
    assert status["state"] == "failed" and status["items_hidden"] == 2
    (shown_map,) = status["maps"]
    assert shown_map["counts"] == {"completed": 2, "failed": 1}
    assert shown_map["progress"] == "map ×3: 2 done, 1 failed"
    assert shown_map["status"] == "upstream_failed"
    failed = [job for job in status["jobs"] if job["map_of"]]
    assert [(job["name"], job["status"], job["map_index"]) for job in failed] == [
        ("square[2]", "failed", 2)]
    assert "TypeError" in failed[0]["error"]


def test_refused_map_steps_write_nothing(db_path):
    db = str(db_path)
    refused = workflow_tools.submit_workflow("w", [
        {"id": "nums", "function": "support.jobs.numbers", "params": {"n": 2}},
        {"id": "sq", "function": "support.jobs.square", "map_over": "numbers"}], db_path=db)
    assert refused["error"]["code"] == "invalid_workflow"
    assert refused["error"]["details"] == {"step_id": "sq"}
    assert "map_over unknown step id 'numbers'; the step ids are nums, sq" in \
        refused["error"]["message"]
    assert tools.queue_stats(db_path=db)["stats"]["total"] == 0
    assert workflow_tools.list_workflows(db_path=db)["count"] == 0


def test_tags_and_limits_cap_and_count_running_jobs(db_path, make_worker):
    db = str(db_path)
    assert limit_tools.list_limits(db_path=db)["limits"] == []
    assert limit_tools.set_limit("gpu", None, db_path=db)["previous"] is None  # a no-op
    set_ = limit_tools.set_limit("gpu", 1, db_path=db)
    assert (set_["tag"], set_["max_running"], set_["previous"]) == ("gpu", 1, None)
    keys = [f"mcp-limit-{uuid.uuid4()}" for _ in range(2)]
    ids = [tools.submit_job("support.jobs.block_until_released", f"held-{i}",
                            params={"key": key}, tags=["gpu", "io"], db_path=db)["job_id"]
           for i, key in enumerate(keys)]
    assert tools.get_job_status(ids[0], db_path=db)["status"]["tags"] == ["gpu", "io"]
    make_worker(db, concurrency=2, polling_interval=0.05).start_background()
    try:
        assert jobs.event(f"{keys[0]}:started").wait(10)
        listed = limit_tools.list_limits(db_path=db)
        assert listed["limits"] == [{"tag": "gpu", "max_running": 1, "running": 1}]
        assert tools.get_job_status(ids[1], db_path=db)["status"]["status"] == "pending"
        cleared = limit_tools.set_limit("gpu", None, db_path=db)
        assert (cleared["max_running"], cleared["previous"]) == (None, 1)
        assert jobs.event(f"{keys[1]}:started").wait(10)  # the limit no longer holds it
        assert limit_tools.list_limits(db_path=db)["count"] == 0
    finally:
        for key in keys:
            jobs.event(f"{key}:release").set()
