"""Bad input on every tool of ``gigq-flow mcp``, through a real session: each answer is
``success: false`` with a code, a message that names the argument (or the step) and the
fix, and nothing is written."""

from __future__ import annotations

import pytest
from support.mcp_client import McpServer

ADD = "support.jobs.add"
NOOP = "support.jobs.noop"


def step(step_id, function=NOOP, **fields):
    return {"id": step_id, "function": function, **fields}


CASES = [
    # (tool, arguments, error code, text the message must hold)
    ("gigq_submit_job", {"function_path": ADD}, "invalid_argument", "'name'"),
    ("gigq_submit_job", {"function_path": 42, "name": "x"}, "invalid_argument",
     "function_path must be a non-empty string, got the integer 42"),
    ("gigq_submit_job", {"function_path": " ", "name": "x"}, "invalid_argument",
     "function_path"),
    ("gigq_submit_job", {"function_path": "nodots", "name": "x"}, "import_error",
     "module.function"),
    ("gigq_submit_job", {"function_path": "no_such_module.f", "name": "x"}, "import_error",
     "No module named 'no_such_module'"),
    ("gigq_submit_job", {"function_path": "support.jobs.missing", "name": "x"},
     "import_error", "no attribute 'missing'"),
    ("gigq_submit_job", {"function_path": "support.jobs.NOT_A_FUNCTION", "name": "x"},
     "import_error", "not a function"),
    ("gigq_submit_job", {"function_path": ADD, "name": ""}, "invalid_argument", "name"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "params": [1, 2]},
     "invalid_argument", "params must be an object"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "priority": "high"},
     "invalid_argument", "priority must be an integer"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "priority": 1.5},
     "invalid_argument", "priority"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "priority": True},
     "invalid_argument", "got the boolean true"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "max_attempts": 0},
     "invalid_argument", "max_attempts must be an integer from 1"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "timeout": -1},
     "invalid_argument", "timeout"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "retry_delay": -5},
     "invalid_argument", "retry_delay"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "description": 7},
     "invalid_argument", "description"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "db_path": 5},
     "invalid_argument", "db_path must be a string or null"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "priorty": 1},
     "invalid_argument", "did you mean 'priority'"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "tags": "gpu"},
     "invalid_argument", "tags must be a list of non-empty, one-line strings"),
    ("gigq_submit_job", {"function_path": ADD, "name": "x", "tags": [" "]},
     "invalid_argument", "tags"),
    ("gigq_get_job_status", {}, "invalid_argument", "'job_id'"),
    ("gigq_get_job_status", {"job_id": 123}, "invalid_argument", "job_id"),
    ("gigq_get_job_status", {"job_id": "nope"}, "not_found", "nope"),
    ("gigq_get_job_result", {"job_id": None}, "invalid_argument", "job_id"),
    ("gigq_get_job_result", {"job_id": "x", "db_path": ["a.db"]}, "invalid_argument",
     "db_path"),
    ("gigq_get_job_logs", {}, "invalid_argument", "'job_id'"),
    ("gigq_get_job_logs", {"job_id": "nope"}, "not_found", "nope"),
    ("gigq_get_job_logs", {"job_id": "x", "attempt": 0}, "invalid_argument",
     "attempt must be an integer from 1"),
    ("gigq_get_job_logs", {"job_id": "x", "attempt": "2"}, "invalid_argument",
     "got the string \"2\""),
    ("gigq_get_job_logs", {"job_id": "x", "atempt": 1}, "invalid_argument",
     "did you mean 'attempt'"),
    ("gigq_list_jobs", {"status_filter": "done"}, "invalid_status", "upstream_failed"),
    ("gigq_list_jobs", {"status_filter": 3}, "invalid_argument", "status_filter"),
    ("gigq_list_jobs", {"limit": -1}, "invalid_argument",
     "limit must be an integer from 0 to 10000, got the integer -1; pass e.g. limit=100"),
    ("gigq_list_jobs", {"limit": "10"}, "invalid_argument", "got the string \"10\""),
    ("gigq_list_jobs", {"limit": 10_001}, "invalid_argument", "limit"),
    ("gigq_queue_stats", {"db_path": 1.5}, "invalid_argument", "db_path"),
    ("gigq_queue_stats", {"verbose": True}, "invalid_argument", "no argument 'verbose'"),
    ("gigq_cancel_job", {"job_id": {}}, "invalid_argument", "job_id"),
    ("gigq_cancel_job", {"job_id": "nope"}, "not_found", "nope"),
    ("gigq_cancel_job", {"job_id": "x", "running": "yes"}, "invalid_argument",
     "running must be true or false, got the string \"yes\"; pass running=true"),
    ("gigq_cancel_job", {"job_id": "x", "runing": True}, "invalid_argument",
     "did you mean 'running'"),
    ("gigq_requeue_job", {"job_id": []}, "invalid_argument", "job_id"),
    ("gigq_requeue_job", {"jobid": "x"}, "invalid_argument", "did you mean 'job_id'"),
    ("gigq_submit_workflow", {"name": "w", "steps": "a"}, "invalid_argument",
     "steps must be a list"),
    ("gigq_submit_workflow", {"name": "w"}, "invalid_argument", "'steps'"),
    ("gigq_submit_workflow", {"name": "", "steps": [step("a")]}, "invalid_argument", "name"),
    ("gigq_submit_workflow", {"name": "w", "steps": []}, "invalid_workflow",
     "at least one step"),
    ("gigq_submit_workflow", {"name": "w", "steps": [1]}, "invalid_workflow", "step 1"),
    ("gigq_submit_workflow", {"name": "w", "steps": [{"function": NOOP}]}, "invalid_workflow",
     "'id'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a"), {"id": "b"}]},
     "invalid_workflow", "'function'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a"), step("a")]},
     "invalid_workflow", "duplicate step id 'a' (steps 1 and 2)"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", depends_on=["z"])]},
     "invalid_workflow", "unknown step id 'z'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a", depends_on=["c"]), step("b", depends_on=["a"]), step("c", depends_on=["b"])]},
     "invalid_workflow", "cycle: a -> c -> b -> a"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", depends_on=["a"])]},
     "invalid_workflow", "cycle: a -> a"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", dependsOn=["b"])]},
     "invalid_workflow", "unknown field(s) 'dependsOn'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", depends_on="b")]},
     "invalid_workflow", "'depends_on' must be a list"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", params=[1])]},
     "invalid_workflow", "'params'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", pass_parent_results="yes")]},
     "invalid_pass_parent_results", "step 'a'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a"), step("b", "support.jobs.nothing_here", depends_on=["a"])]},
     "import_error", "nothing_here"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a")], "cache": "yes"},
     "invalid_argument", 'cache must be false, true or "recompute", got the string "yes"'),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a")], "cache": 1},
     "invalid_argument", "got the integer 1"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", cache="no")]},
     "invalid_workflow", "step 'a': 'cache' must be true, false"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", cache_version=2)]},
     "invalid_workflow", "'cache_version' must be a non-empty string or omitted, got the "
                         "integer 2"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", cache_version=" ")]},
     "invalid_workflow", "'cache_version'"),
    # maps and tags: checked with the other step fields, before anything is written
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", map_over="z")]},
     "invalid_workflow", "step 'a' has map_over unknown step id 'z'; the step ids are a"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", map_over="a")]},
     "invalid_workflow", "step 'a' maps over itself"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", map_over=3)]},
     "invalid_workflow", "'map_over' must be the id of the step"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a"), step("b", map_over="a", max_active=0)]},
     "invalid_workflow", "'max_active' must be an integer >= 1 (how many of its items may "
                         "run at once), got the integer 0"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a"), step("b", map_over="a", max_active="2")]},
     "invalid_workflow", "got the string \"2\""),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a"), step("b", max_active=2)]},
     "invalid_workflow", "'max_active' applies to a map step only; add \"map_over\""),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a"), step("b", item_param="x")]},
     "invalid_workflow", "'item_param' applies to a map step only"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a"), step("b", map_over="a", item_param="not a name")]},
     "invalid_workflow", "'item_param' must be a parameter name"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a"), step("b", map_over="a", item_param="x", params={"x": 1})]},
     "invalid_workflow", "item_param 'x' is also given in 'params'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a"), step("b"), step("c", map_over="a", depends_on=["b"])]},
     "invalid_workflow", "remove 'depends_on'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a"), step("b", map_over="a", pass_parent_results=True)]},
     "invalid_workflow", "remove 'pass_parent_results'"),
    ("gigq_submit_workflow", {"name": "w", "steps": [
        step("a", map_over="b"), step("b", map_over="a")]},
     "invalid_workflow", "cycle"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", tags="gpu")]},
     "invalid_workflow", "'tags' must be a list of non-empty, one-line strings"),
    ("gigq_submit_workflow", {"name": "w", "steps": [step("a", tags=["gpu", ""])]},
     "invalid_workflow", "'tags'"),
    ("gigq_list_workflows", {"limit": -3}, "invalid_argument", "limit"),
    ("gigq_get_workflow_status", {"workflow_id": 5}, "invalid_argument", "workflow_id"),
    ("gigq_get_workflow_status", {"workflow_id": "nope"}, "not_found", "nope"),
    ("gigq_get_workflow_status", {"workflow_id": "x", "items": "all"}, "invalid_argument",
     "items must be true or false"),
    ("gigq_get_workflow_results", {}, "invalid_argument", "'workflow_id'"),
    ("gigq_get_workflow_results", {"workflow_id": "nope"}, "not_found", "nope"),
    ("gigq_explain_workflow", {}, "invalid_argument", "'workflow_id'"),
    ("gigq_explain_workflow", {"workflow_id": 5}, "invalid_argument", "workflow_id"),
    ("gigq_explain_workflow", {"workflow_id": "nope"}, "not_found", "nope"),
    ("gigq_cancel_workflow", {}, "invalid_argument", "'workflow_id'"),
    ("gigq_cancel_workflow", {"workflow_id": 7}, "invalid_argument", "workflow_id"),
    ("gigq_cancel_workflow", {"workflow_id": "nope"}, "not_found", "nope"),
    ("gigq_rerun_workflow", {"workflow_id": "nope"}, "not_found", "nope"),
    ("gigq_rerun_workflow", {"workflow_id": ""}, "invalid_argument", "workflow_id"),
    ("gigq_rerun_workflow", {"workflow_id": "x", "cache": "always"}, "invalid_argument",
     'cache must be false, true or "recompute"'),
    ("gigq_rerun_workflow", {"workflow_id": "x", "cache": None}, "invalid_argument",
     "got null"),
    ("gigq_rerun_workflow", {"workflow_id": "x", "cashe": True}, "invalid_argument",
     "did you mean 'cache'"),
    ("gigq_set_limit", {"tag": "gpu"}, "invalid_argument", "'max_running'"),
    ("gigq_set_limit", {"max_running": 2}, "invalid_argument", "'tag'"),
    ("gigq_set_limit", {"tag": "", "max_running": 2}, "invalid_argument",
     "tag must be a non-empty, one-line string"),
    ("gigq_set_limit", {"tag": ["gpu"], "max_running": 2}, "invalid_argument", "tag"),
    ("gigq_set_limit", {"tag": "a\nb", "max_running": 2}, "invalid_argument", "one-line"),
    ("gigq_set_limit", {"tag": "gpu", "max_running": 0}, "invalid_argument",
     "max_running must be an integer from 1"),
    ("gigq_set_limit", {"tag": "gpu", "max_running": "2"}, "invalid_argument",
     "max_running"),
    ("gigq_set_limit", {"tag": "gpu", "max_running": True}, "invalid_argument",
     "max_running"),
    ("gigq_list_limits", {"db_path": 3}, "invalid_argument", "db_path"),
    ("gigq_list_limits", {"tag": "gpu"}, "invalid_argument", "has no argument 'tag'"),
    ("gigq_run_worker", {"seconds": 0}, "invalid_argument",
     "seconds must be a number of seconds above 0 and at most 300"),
    ("gigq_run_worker", {"seconds": 301}, "invalid_argument", "seconds"),
    ("gigq_run_worker", {"seconds": "10"}, "invalid_argument", "seconds"),
    ("gigq_run_worker", {"seconds": True}, "invalid_argument", "seconds"),
    ("gigq_run_worker", {"concurrency": 0}, "invalid_argument", "concurrency"),
    ("gigq_run_worker", {"concurrency": 33}, "invalid_argument", "concurrency"),
    ("gigq_run_worker", {"concurrency": 1.5}, "invalid_argument", "concurrency"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with McpServer(tmp_path_factory.mktemp("mcp-bad-input")) as served:
        yield served


def test_every_tool_has_bad_input_cases(server):
    assert {case[0] for case in CASES} == {tool.name for tool in server.tools()}


@pytest.mark.parametrize(("index", "tool", "arguments", "code", "named"),
                         [(i, *case) for i, case in enumerate(CASES)],
                         ids=[f"{case[0]}-{case[2]}-{i}" for i, case in enumerate(CASES)])
def test_bad_input_is_refused_naming_the_problem_and_writes_nothing(
        server, index, tool, arguments, code, named):
    db = server.cwd / f"case-{index}.db"
    if "db_path" not in arguments:  # else the case is about db_path itself
        arguments = {**arguments, "db_path": str(db)}
    response = server.call(tool, **arguments)
    assert response["success"] is False
    assert response["error"]["code"] == code, response
    assert named in response["error"]["message"], response
    if code in ("invalid_argument", "invalid_status") and "argument" in response["error"].get(
            "details", {}):
        assert response["error"]["details"]["argument"] in response["error"]["message"]
    assert not db.exists(), "a refused call created the queue file"


def test_a_refused_workflow_leaves_an_existing_queue_as_it_was(server):
    db = str(server.cwd / "existing.db")
    assert server.call("gigq_submit_job", function_path=ADD, name="kept",
                       params={"a": 1, "b": 2}, db_path=db)["success"]
    refused = server.call("gigq_submit_workflow", name="w", db_path=db, steps=[
        step("a"), step("b", depends_on=["a"]), step("c", "support.jobs.missing")])
    assert refused["error"]["code"] == "import_error"
    assert refused["error"]["details"]["step_id"] == "c"
    assert server.call("gigq_queue_stats", db_path=db)["stats"]["total"] == 1
    assert server.call("gigq_list_workflows", db_path=db)["count"] == 0


def test_an_unknown_tool_and_a_file_that_is_not_a_queue(server):
    unknown = server.raw_call("gigq_frobnicate", {})
    assert unknown.isError and "gigq_submit_job" in unknown.content[0].text
    notes = server.cwd / "notes.db"
    notes.write_text("not a database")
    response = server.call("gigq_queue_stats", db_path=str(notes))
    assert response["error"]["code"] == "database_error"
    assert notes.read_text() == "not a database"
