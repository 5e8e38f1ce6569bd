"""``gigq-flow mcp`` in a real Model Context Protocol session over stdio, driven by the
SDK's own client: the handshake, the tool list with GigQ's arguments and defaults, jobs
and workflows from submission to results, and the server's options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.mcp_client import McpServer, server_env

from gigq_flow import Job, JobQueue

GIGQ_TOOLS = {
    # name: (required arguments, defaults of the others), as gigq-mcp declares them
    "gigq_submit_job": (["function_path", "name"], {
        "params": None, "db_path": None, "priority": 0, "max_attempts": 3, "timeout": 300,
        "description": "", "retry_delay": 0}),
    "gigq_get_job_status": (["job_id"], {"db_path": None}),
    "gigq_get_job_result": (["job_id"], {"db_path": None}),
    "gigq_list_jobs": ([], {"status_filter": None, "limit": 100, "db_path": None}),
    "gigq_queue_stats": ([], {"db_path": None}),
    "gigq_cancel_job": (["job_id"], {"db_path": None}),
    "gigq_requeue_job": (["job_id"], {"db_path": None}),
    "gigq_submit_workflow": (["name", "steps"], {"db_path": None}),
}
MORE_ARGUMENTS = {"gigq_submit_workflow": {"cache": False}, "gigq_cancel_job": {"running": False},
                  "gigq_submit_job": {"tags": None}}
"""Arguments gigq-flow adds to GigQ's tools, with their defaults."""
MORE_TOOLS = {
    "gigq_list_workflows": ([], {"limit": 100, "db_path": None}),
    "gigq_get_workflow_status": (["workflow_id"], {"db_path": None, "items": False}),
    "gigq_get_workflow_results": (["workflow_id"], {"db_path": None}),
    "gigq_explain_workflow": (["workflow_id"], {"db_path": None}),
    "gigq_cancel_workflow": (["workflow_id"], {"db_path": None}),
    "gigq_rerun_workflow": (["workflow_id"], {"cache": True, "db_path": None}),
    "gigq_run_worker": ([], {"seconds": 10.0, "concurrency": 1, "db_path": None,
                            "executor": "threads"}),
    "gigq_get_job_logs": (["job_id"], {"attempt": None, "db_path": None}),
    "gigq_set_limit": (["tag", "max_running"], {"db_path": None}),
    "gigq_list_limits": ([], {"db_path": None}),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the module, in a directory of its own, no queue chosen for it."""
    with McpServer(tmp_path_factory.mktemp("mcp-server")) as served:
        yield served


def test_the_server_introduces_itself_and_offers_gigqs_tools_and_more(server):
    assert server.init is not None
    assert server.init.serverInfo.name == "gigq-flow"
    assert "gigq_run_worker" in (server.init.instructions or "")
    tools = {tool.name: tool for tool in server.tools()}
    assert set(tools) == set(GIGQ_TOOLS) | set(MORE_TOOLS)
    for name, (required, defaults) in {**GIGQ_TOOLS, **MORE_TOOLS}.items():
        defaults = {**defaults, **MORE_ARGUMENTS.get(name, {})}
        schema = tools[name].inputSchema
        assert schema["required"] == required, name
        assert set(schema["properties"]) == set(required) | set(defaults), name
        assert {key: schema["properties"][key]["default"] for key in defaults} == defaults
        assert tools[name].description
    assert tools["gigq_queue_stats"].annotations.readOnlyHint is True
    assert tools["gigq_explain_workflow"].annotations.readOnlyHint is True
    assert tools["gigq_rerun_workflow"].annotations.readOnlyHint is not True
    step = tools["gigq_submit_workflow"].inputSchema["properties"]["steps"]["items"]
    assert {"cache", "cache_version", "tags", "map_over", "item_param", "max_active"} <= set(
        step["properties"])
    assert tools["gigq_list_limits"].annotations.readOnlyHint is True
    assert tools["gigq_set_limit"].inputSchema["properties"]["max_running"]["type"] == [
        "integer", "null"]
    assert tools["gigq_cancel_job"].annotations.destructiveHint is True
    assert tools["gigq_cancel_workflow"].annotations.destructiveHint is True
    assert tools["gigq_get_job_logs"].annotations.readOnlyHint is True


def test_a_job_goes_from_submission_to_its_result(server):
    db = server.cwd / "jobs.db"
    submitted = server.call("gigq_submit_job", function_path="support.jobs.add", name="sum",
                            params={"a": 2, "b": 3}, db_path=str(db), priority=5)
    assert submitted["success"] and submitted["db_path"] == str(db)
    assert submitted["worker_required"] is True
    assert submitted["worker_command_example"].startswith(f"gigq-flow --db {db} worker")
    job_id = submitted["job_id"]

    waiting = server.call("gigq_get_job_result", job_id=job_id, db_path=str(db))
    assert waiting["result"] is None and waiting["job_status"] == "pending"
    assert "gigq_run_worker" in waiting["message"]
    stats = server.call("gigq_queue_stats", db_path=str(db))
    assert stats["stats"]["pending"] == 1 and stats["signals"]["pending_without_runner"]
    assert stats["signals"]["live_workers"] == 0
    assert "gigq-flow --db" in stats["interpretation"]

    ran = server.call("gigq_run_worker", seconds=30, db_path=str(db))
    assert ran["stopped_because"] == "no_pending_jobs", ran
    assert ran["stats_after"]["completed"] == 1 and ran["elapsed_seconds"] < 30

    assert server.call("gigq_get_job_result", job_id=job_id, db_path=str(db))["result"] == 5
    status = server.call("gigq_get_job_status", job_id=job_id, db_path=str(db))["status"]
    assert status["status"] == "completed" and status["priority"] == 5
    assert status["params"] == {"a": 2, "b": 3} and len(status["executions"]) == 1
    listed = server.call("gigq_list_jobs", status_filter="completed", db_path=str(db))
    assert listed["count"] == 1 and listed["jobs"][0]["id"] == job_id
    assert server.call("gigq_queue_stats", db_path=str(db))["interpretation"].startswith("idle")


def test_a_workflow_of_plain_and_task_functions_runs_and_reports_by_step(server):
    db = str(server.cwd / "workflows.db")
    steps = [  # listed children first: the server orders them
        {"id": "total", "function": "support.jobs.sum_parents", "depends_on": ["two", "six"]},
        {"id": "two", "function": "support.jobs.add", "params": {"a": 1, "b": 1}},
        {"id": "six", "function": "support.jobs.double", "params": {"x": 3}},  # a @task
    ]
    submitted = server.call("gigq_submit_workflow", name="fan-in", steps=steps, db_path=db)
    assert submitted["success"], submitted
    ids = submitted["step_id_to_job_id"]
    assert list(ids) == ["total", "two", "six"]
    assert submitted["submitted_job_ids"] == [ids["two"], ids["six"], ids["total"]]
    workflow_id = submitted["workflow_id"]

    status = server.call("gigq_get_workflow_status", workflow_id=workflow_id, db_path=db)
    assert status["state"] == "pending" and status["counts"]["pending"] == 3
    assert server.call("gigq_run_worker", seconds=30, concurrency=2,
                       db_path=db)["stopped_because"] == "no_pending_jobs"

    status = server.call("gigq_get_workflow_status", workflow_id=workflow_id, db_path=db)
    assert status["state"] == "succeeded" and status["done"] and status["succeeded"]
    assert {job["id"]: job["status"] for job in status["jobs"]} == {
        job_id: "completed" for job_id in ids.values()}
    results = server.call("gigq_get_workflow_results", workflow_id=workflow_id, db_path=db)
    assert results["results"] == {"add": 2, "double": 6, "sum_parents": 8}
    assert results["failed"] == [] and results["done"]
    listed = server.call("gigq_list_workflows", db_path=db)
    assert [(w["id"], w["state"]) for w in listed["workflows"]] == [(workflow_id, "succeeded")]


def test_a_cached_workflow_reruns_and_explains_itself(server):
    db = str(server.cwd / "cached.db")
    steps = [{"id": "two", "function": "support.jobs.add", "params": {"a": 1, "b": 1}},
             {"id": "total", "function": "support.jobs.sum_parents", "depends_on": ["two"],
              "cache_version": "1"}]
    submitted = server.call("gigq_submit_workflow", name="cached", steps=steps, db_path=db,
                            cache=True)
    assert submitted["success"] and submitted["cache"] is True, submitted
    server.call("gigq_run_worker", seconds=30, db_path=db)
    first = submitted["workflow_id"]
    assert set(server.call("gigq_explain_workflow", workflow_id=first, db_path=db)[
        "reasons"].values()) == {"ran: no earlier result"}

    rerun = server.call("gigq_rerun_workflow", workflow_id=first, db_path=db)
    assert rerun["rerun_of"] == first and rerun["worker_required"] is True
    assert rerun["worker_command_example"].startswith(f"gigq-flow --db {db} worker")
    server.call("gigq_run_worker", seconds=30, db_path=db)
    explained = server.call("gigq_explain_workflow", workflow_id=rerun["workflow_id"],
                            db_path=db)
    assert explained["reasons"] == {"add": f"cached (from run {first})",
                                    "sum_parents": f"cached (from run {first})"}
    assert explained["cached"] == 2
    status = server.call("gigq_get_workflow_status", workflow_id=rerun["workflow_id"],
                         db_path=db)
    assert status["cached"] == 2 and all(job["cached_from"] for job in status["jobs"])
    results = server.call("gigq_get_workflow_results", workflow_id=rerun["workflow_id"],
                          db_path=db)
    assert results["results"] == {"add": 2, "sum_parents": 2}


def test_a_map_step_with_tags_and_a_limit_runs_in_a_session(server):
    db = str(server.cwd / "maps.db")
    assert server.call("gigq_set_limit", tag="cpu", max_running=1, db_path=db)["success"]
    steps = [{"id": "nums", "function": "support.jobs.numbers", "params": {"n": 3}},
             {"id": "sq", "function": "support.jobs.square", "map_over": "nums",
              "max_active": 2, "tags": ["cpu"]},
             {"id": "sum", "function": "support.jobs.total", "depends_on": ["sq"]}]
    submitted = server.call("gigq_submit_workflow", name="squares", steps=steps, db_path=db)
    assert submitted["success"], submitted
    ran = server.call("gigq_run_worker", seconds=30, concurrency=2, db_path=db)
    assert ran["stopped_because"] == "no_pending_jobs", ran
    status = server.call("gigq_get_workflow_status", workflow_id=submitted["workflow_id"],
                         db_path=db)
    assert status["succeeded"] and status["items_hidden"] == 3
    assert [m["progress"] for m in status["maps"]] == ["map ×3: 3 done"]
    results = server.call("gigq_get_workflow_results", workflow_id=submitted["workflow_id"],
                          db_path=db)["results"]
    assert results["square"] == [0, 1, 4] and results["total"] == 5
    assert server.call("gigq_list_limits", db_path=db)["limits"] == [
        {"tag": "cpu", "max_running": 1, "running": 0}]


def test_cancel_and_requeue_answer_gigqs_codes(server):
    db = str(server.cwd / "cancel.db")
    job_id = server.call("gigq_submit_job", function_path="support.jobs.noop", name="n",
                         db_path=db)["job_id"]
    assert server.call("gigq_requeue_job", job_id=job_id, db_path=db)["error"]["code"] == \
        "requeue_failed"
    assert server.call("gigq_cancel_job", job_id=job_id, db_path=db)["cancelled"] is True
    again = server.call("gigq_cancel_job", job_id=job_id, db_path=db)
    assert again["error"]["code"] == "cancel_failed"
    assert again["error"]["details"]["job_status"] == "cancelled"
    requeued = server.call("gigq_requeue_job", job_id=job_id, db_path=db)
    assert requeued["requeued"] is True and requeued["worker_required"] is True
    for tool in ("gigq_cancel_job", "gigq_requeue_job", "gigq_get_job_status",
                 "gigq_get_job_result", "gigq_get_job_logs"):
        assert server.call(tool, job_id="no-such-job", db_path=db)["error"]["code"] == \
            "not_found"


def test_jobs_that_print_and_read_stdin_leave_the_protocol_alone(server):
    db = str(server.cwd / "chatty.db")
    job_id = server.call("gigq_submit_job", function_path="support.jobs.chatty", name="c",
                         params={"value": "hello"}, db_path=db)["job_id"]
    assert server.call("gigq_run_worker", seconds=30, db_path=db)["stats_after"]["completed"]
    result = server.call("gigq_get_job_result", job_id=job_id, db_path=db)["result"]
    assert result == {"value": "hello", "stdin": ""}
    assert server.call("gigq_queue_stats", db_path=db)["success"]  # the session goes on
    log = server.stderr()  # a print is the step's output, kept with its attempt; a write
    assert "chatty writes hello to fd 1" in log  # to fd 1 goes round it, to stderr
    assert "chatty prints hello" not in log
    logs = server.call("gigq_get_job_logs", job_id=job_id, db_path=db)["logs"]
    assert logs == "chatty prints hello\n"


def test_a_failed_jobs_logs_and_traceback_come_back_per_attempt(server):
    db = str(server.cwd / "logs.db")
    job_id = server.call("gigq_submit_job", function_path="support.jobs.print_then_fail",
                         name="f", params={"label": "s"}, max_attempts=2,
                         db_path=db)["job_id"]
    assert server.call("gigq_run_worker", seconds=30, db_path=db)["stats_after"]["failed"] == 1
    latest = server.call("gigq_get_job_logs", job_id=job_id, db_path=db)
    assert (latest["attempt"], latest["status"]) == (2, "failed")
    assert latest["logs"].startswith("s is about to fail\nTraceback (most recent call last):")
    assert latest["traceback"].rstrip().endswith("ValueError: deep problem in s")
    first = server.call("gigq_get_job_logs", job_id=job_id, attempt=1, db_path=db)
    assert first["attempt"] == 1 and first["logs"] == latest["logs"]
    beyond = server.call("gigq_get_job_logs", job_id=job_id, attempt=3, db_path=db)
    assert beyond["error"]["code"] == "invalid_argument"
    assert "has 2 attempt(s); pass attempt 1 to 2" in beyond["error"]["message"]
    log = server.stderr()
    assert "s is about to fail" not in log  # kept with the attempt, not on the server's stderr


def test_without_db_path_the_server_uses_gigq_flow_db_in_its_directory(server):
    stats = server.call("gigq_queue_stats")
    assert stats["db_path"] == str(server.cwd / "gigq_flow.db")
    assert not (server.cwd / "gigq_flow.db").exists()  # reading creates no file
    assert "does not exist" in stats["message"]


def test_db_given_to_the_command_beats_gigq_db_path_and_allow_module_applies(tmp_path: Path):
    """``--db`` typed on the command line, then ``$GIGQ_DB_PATH``, then the default; a
    tool's ``db_path`` beats them all. ``--allow-module`` limits submissions and the
    in-server worker."""
    env = server_env(GIGQ_DB_PATH=str(tmp_path / "env.db"), GIGQ_FLOW_DB="flow.db")
    with McpServer(tmp_path, global_args=("--db", "cli.db"), env=env,
                   mcp_args=("--allow-module", "support.jobs")) as server:
        assert server.call("gigq_queue_stats")["db_path"] == str(tmp_path / "cli.db")
        assert server.call("gigq_queue_stats", db_path="arg.db")["db_path"] == \
            str(tmp_path / "arg.db")
        refused = server.call("gigq_submit_job", function_path="json.dumps", name="j")
        assert refused["error"]["code"] == "not_allowed"
        assert "--allow-module" in refused["error"]["message"]
        reexported = server.call("gigq_submit_job", function_path="support.jobs.copyfile",
                                 name="c")
        assert reexported["error"]["code"] == "not_allowed"
        assert "shutil" in reexported["error"]["message"]
        assert not (tmp_path / "cli.db").exists()

        ok = server.call("gigq_submit_job", function_path="support.jobs.add", name="ok",
                         params={"a": 1, "b": 1})
        assert "--allow-module support.jobs" in ok["worker_command_example"]
        queue = JobQueue(tmp_path / "cli.db")
        outside = queue.submit(Job("outside", os.getcwd))  # written by another client
        ran = server.call("gigq_run_worker", seconds=30)
        assert ran["stats_after"]["completed"] == 1 and ran["stats_after"]["failed"] == 1
        error = queue.get_status(outside)["error"]
        assert "outside this worker's allowed modules" in error
        queue.close()

    with McpServer(tmp_path, env=env) as server:  # no --db: the variable decides
        assert server.call("gigq_queue_stats")["db_path"] == str(tmp_path / "env.db")
