"""The MCP tools as plain functions, without a session, on every backend: what each one
answers, ``gigq_run_worker``'s three ways of ending, refusals that write nothing, and
which queue a call uses."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest
from support import jobs
from support.helpers import lines, wait_until

from gigq_flow import Job, JobQueue, Workflow
from gigq_flow.mcp import catalog, tools, worker_tool, workflow_tools
from gigq_flow.mcp.common import ServerSettings, resolve_db

pytestmark = pytest.mark.contract


def test_a_job_through_every_job_tool(db_path):
    db = str(db_path)
    stats = tools.queue_stats(db_path=db)
    assert stats["stats"]["total"] == 0 and stats["interpretation"].startswith("idle")
    job_id = tools.submit_job("support.jobs.tagged", "ten", params={"x": 1}, db_path=db,
                              max_attempts=2, timeout=60, description="d")["job_id"]
    record = tools.get_job_status(job_id, db_path=db)["status"]
    assert (record["name"], record["max_attempts"], record["timeout"], record["priority"],
            record["description"]) == ("ten", 2, 60, 0, "d")  # the tool's values, as in GigQ
    assert tools.list_jobs("pending", db_path=db)["count"] == 1
    assert tools.list_jobs("completed", db_path=db)["count"] == 0
    assert tools.list_jobs(limit=0, db_path=db)["jobs"] == []

    ran = worker_tool.run_worker(seconds=30, db_path=db)
    assert ran["stopped_because"] == "no_pending_jobs", ran
    assert ran["stats_before"]["pending"] == 1 and ran["stats_after"]["completed"] == 1
    assert ran["returned_to_queue"] == [] and "worker_required" not in ran
    assert tools.get_job_result(job_id, db_path=db)["result"] == 10

    assert tools.cancel_job(job_id, db_path=db)["error"]["code"] == "cancel_failed"
    requeued = tools.requeue_job(job_id, db_path=db)
    assert requeued["error"]["code"] == "requeue_failed"
    assert "only failed, timeout, cancelled" in requeued["error"]["message"]
    assert tools.get_job_status("nope", db_path=db)["error"]["code"] == "not_found"


def test_a_failed_job_reports_its_error_and_requeues(db_path):
    db = str(db_path)
    job_id = tools.submit_job("support.jobs.fail", "boom", params={"message": "no disk"},
                              max_attempts=1, db_path=db)["job_id"]
    worker_tool.run_worker(seconds=30, db_path=db)
    waiting = tools.get_job_result(job_id, db_path=db)
    assert waiting["result"] is None and waiting["job_status"] == "failed"
    assert "RuntimeError: no disk" in waiting["message"]
    assert tools.requeue_job(job_id, db_path=db)["requeued"] is True
    assert tools.get_job_status(job_id, db_path=db)["status"]["status"] == "pending"


def test_job_logs_come_per_attempt_with_the_traceback(db_path):
    db = str(db_path)
    job_id = tools.submit_job("support.jobs.print_then_fail", "f", params={"label": "m"},
                              max_attempts=2, db_path=db)["job_id"]
    assert tools.get_job_logs(job_id, db_path=db) == {
        "success": True, "job_id": job_id, "attempt": None, "status": "pending", "logs": "",
        "traceback": None, "db_path": tools.get_job_status(job_id, db_path=db)["db_path"]}
    not_yet = tools.get_job_logs(job_id, attempt=1, db_path=db)["error"]
    assert not_yet["code"] == "invalid_argument" and "has not started yet" in not_yet["message"]
    worker_tool.run_worker(seconds=30, db_path=db)
    latest = tools.get_job_logs(job_id, db_path=db)
    assert (latest["attempt"], latest["status"]) == (2, "failed")
    assert latest["logs"] == "m is about to fail\n" + latest["traceback"]
    assert "in print_then_fail" in latest["traceback"]
    assert latest["traceback"].rstrip().endswith("ValueError: deep problem in m")
    first = tools.get_job_logs(job_id, attempt=1, db_path=db)
    assert first["attempt"] == 1 and first["logs"].startswith("m is about to fail\n")
    beyond = tools.get_job_logs(job_id, attempt=3, db_path=db)["error"]
    assert beyond["code"] == "invalid_argument"
    assert beyond["details"] == {"argument": "attempt", "attempts": 2}
    assert "pass attempt 1 to 2" in beyond["message"]
    missing = tools.get_job_logs("nope", db_path=db)["error"]
    assert missing["code"] == "not_found" and "gigq_list_jobs" in missing["message"]

    done = tools.submit_job("support.jobs.talk", "t", params={"label": "k", "lines": 1},
                            db_path=db)["job_id"]
    worker_tool.run_worker(seconds=30, db_path=db)
    talked = tools.get_job_logs(done, db_path=db)
    assert (talked["attempt"], talked["status"], talked["traceback"]) == (1, "completed", None)
    assert talked["logs"].startswith("k line 0\nk to stderr\nWARNING steps.k: careful with k")


def test_a_workflow_through_every_workflow_tool(db_path):
    db = str(db_path)
    steps = [
        {"id": "sum", "function": "support.jobs.sum_parents", "depends_on": ["a", "b"],
         "name": "total"},
        {"id": "a", "function": "support.jobs.add", "params": {"a": 1, "b": 2}},
        {"id": "b", "function": "support.jobs.fail", "params": {"message": "late"}},
        {"id": "c", "function": "support.jobs.identity", "params": {"value": [1, "x"]}},
    ]
    submitted = workflow_tools.submit_workflow("mixed", steps, db_path=db)
    assert submitted["success"], submitted
    assert submitted["submitted_job_ids"][-1] == submitted["step_id_to_job_id"]["sum"]
    workflow_id = submitted["workflow_id"]
    results = workflow_tools.get_workflow_results(workflow_id, db_path=db)
    assert results["results"] == {} and not results["done"]
    assert "4 of 4 jobs have not finished" in results["message"]

    worker_tool.run_worker(seconds=30, concurrency=3, db_path=db)
    status = workflow_tools.get_workflow_status(workflow_id, db_path=db)
    assert status["state"] == "failed" and status["done"] and not status["succeeded"]
    assert {job["name"]: job["status"] for job in status["jobs"]} == {
        "add": "completed", "fail": "failed", "identity": "completed",
        "total": "upstream_failed"}
    assert len(status["edges"]) == 2
    results = workflow_tools.get_workflow_results(workflow_id, db_path=db)
    assert results["results"] == {"add": 3, "identity": [1, "x"]}
    assert {job["name"]: job["status"] for job in results["failed"]} == {
        "fail": "failed", "total": "upstream_failed"}
    listed = workflow_tools.list_workflows(db_path=db)
    assert listed["workflows"][0]["state"] == "failed" and listed["count"] == 1
    assert workflow_tools.list_workflows(limit=0, db_path=db)["total"] == 1


def test_a_cached_workflow_reruns_after_a_failure_and_explains_each_step(db_path, tmp_path):
    db, log, flags = str(db_path), tmp_path / "calls.log", tmp_path / "flags"
    flags.mkdir()
    (flags / "check").touch()
    steps = [
        {"id": "load", "function": "support.jobs.record_call",
         "params": {"log_path": str(log), "label": "load"}, "name": "load"},
        {"id": "check", "function": "support.jobs.fail_if_flag", "depends_on": ["load"],
         "params": {"label": "check", "flag_dir": str(flags)}, "name": "check"},
        {"id": "notify", "function": "support.jobs.record_call", "cache": False,
         "params": {"log_path": str(log), "label": "notify"}, "name": "notify"},
        {"id": "report", "function": "support.jobs.identity", "depends_on": ["check"],
         "params": {"value": "done"}, "name": "report", "cache_version": "2"},
    ]
    submitted = workflow_tools.submit_workflow("cached", steps, db_path=db, cache=True)
    assert submitted["success"] and submitted["cache"] is True, submitted
    first = submitted["workflow_id"]
    ids = submitted["step_id_to_job_id"]
    queue = JobQueue(db)
    stored = {name: queue.get_status(job_id) for name, job_id in ids.items()}
    queue.close()
    assert {name: (job["cache"], job["cache_version"]) for name, job in stored.items()} == {
        "load": ("use", None), "check": ("use", None), "notify": ("never", None),
        "report": ("use", "2")}
    worker_tool.run_worker(seconds=30, concurrency=2, db_path=db)
    explained = workflow_tools.explain_workflow(first, db_path=db)
    assert explained["reasons"] == {
        "load": "ran: no earlier result", "check": "ran: failed", "notify": "ran: cache off",
        "report": "not run: upstream_failed"}
    assert explained["cached"] == 0 and explained["done"] and explained["workflow_id"] == first

    (flags / "check").unlink()  # the fix
    rerun = workflow_tools.rerun_workflow(first, db_path=db)
    assert rerun["success"], rerun
    assert (rerun["rerun_of"], rerun["cache"], rerun["total"], rerun["name"]) == \
        (first, True, 4, "cached")
    assert rerun["worker_required"] is True and "worker" in rerun["worker_command_example"]
    second = rerun["workflow_id"]
    pending = workflow_tools.explain_workflow(second, db_path=db)["reasons"]
    assert set(pending.values()) == {"pending"}
    worker_tool.run_worker(seconds=30, concurrency=2, db_path=db)
    status = workflow_tools.get_workflow_status(second, db_path=db)
    assert status["succeeded"] and status["cached"] == 1
    assert {job["name"]: job["cached_from"] for job in status["jobs"]} == {
        "load": ids["load"], "check": None, "notify": None, "report": None}
    assert workflow_tools.explain_workflow(second, db_path=db)["reasons"] == {
        "load": f"cached (from run {first})", "check": "ran: no earlier result",
        "notify": "ran: cache off", "report": "ran: no earlier result"}
    assert sorted(lines(log)) == ["load", "notify", "notify"]  # load ran once
    results = workflow_tools.get_workflow_results(second, db_path=db)["results"]
    assert results == {"load": "load", "check": "check", "notify": "notify", "report": "done"}

    again = workflow_tools.rerun_workflow(second, cache="recompute", db_path=db)
    off = workflow_tools.rerun_workflow(second, cache=False, db_path=db)
    worker_tool.run_worker(seconds=30, concurrency=2, db_path=db)
    assert workflow_tools.explain_workflow(again["workflow_id"], db_path=db)["reasons"] == {
        "load": "ran: recompute", "check": "ran: recompute", "notify": "ran: cache off",
        "report": "ran: recompute"}
    assert set(workflow_tools.explain_workflow(off["workflow_id"], db_path=db)[
        "reasons"].values()) == {"ran: cache off"}
    assert lines(log).count("load") == 3
    listed = workflow_tools.list_workflows(db_path=db)["workflows"]
    assert [w["id"] for w in listed][-2:] == [second, first] and len(listed) == 4


def test_rerun_refuses_a_function_outside_the_allowed_modules(db_path):
    db = str(db_path)
    workflow = Workflow("outside")
    workflow.add_task(jobs.add, params={"a": 1, "b": 2}, name="sum")
    queue = JobQueue(db)
    run_id = workflow.submit(queue).id
    queue.close()
    refused = workflow_tools.rerun_workflow(
        run_id, db_path=db, settings=ServerSettings(allowed_modules=("tasks",)))
    assert refused["error"]["code"] == "not_allowed", refused
    assert "step 'sum'" in refused["error"]["message"]
    assert "--allow-module" in refused["error"]["message"]
    assert workflow_tools.list_workflows(db_path=db)["total"] == 1
    allowed = workflow_tools.rerun_workflow(
        run_id, cache=False, db_path=db,
        settings=ServerSettings(allowed_modules=("support.jobs",)))
    assert allowed["success"] and "--allow-module support.jobs" in allowed[
        "worker_command_example"]
    assert workflow_tools.list_workflows(db_path=db)["total"] == 2


def long_step_running(db_path, make_worker, steps, concurrency=1):
    """Submit ``steps`` plus a step ``long`` that loops on check_cancelled(), start a
    background worker, and wait until ``long`` runs; returns the submission."""
    key = f"mcp-cancel-{uuid.uuid4().hex[:8]}"
    long = {"id": "long", "function": "support.jobs.work_until_cancelled",
            "params": {"key": key}, "name": "long"}
    submitted = workflow_tools.submit_workflow("cancel me", [long, *steps], db_path=str(db_path))
    assert submitted["success"], submitted
    make_worker(db_path, concurrency=concurrency, polling_interval=0.1).start_background()
    assert jobs.event(f"{key}:started").wait(20)
    return submitted, key


def test_a_running_job_is_cancelled_only_with_running(db_path, make_worker):
    db = str(db_path)
    after = {"id": "after", "function": "support.jobs.noop", "depends_on": ["long"]}
    submitted, key = long_step_running(db_path, make_worker, [after])
    long_id, after_id = (submitted["step_id_to_job_id"][step] for step in ("long", "after"))

    refused = tools.cancel_job(long_id, db_path=db)
    assert refused["error"]["code"] == "cancel_failed"
    assert refused["error"]["details"]["job_status"] == "running"
    assert "pass running=true to stop it" in refused["error"]["message"]
    assert tools.get_job_status(long_id, db_path=db)["status"]["status"] == "running"
    assert not jobs.event(f"{key}:stopped").is_set()

    cancelled = tools.cancel_job(long_id, db_path=db, running=True)
    assert (cancelled["success"], cancelled["cancelled"]) == (True, True), cancelled
    record = tools.get_job_status(long_id, db_path=db)["status"]
    assert (record["status"], record["error"]) == ("cancelled", "cancelled while it ran")
    assert [attempt["status"] for attempt in record["executions"]] == ["cancelled"]
    assert tools.get_job_status(after_id, db_path=db)["status"]["status"] == "upstream_failed"
    assert jobs.event(f"{key}:stopped").wait(5)  # the step was told, through its heartbeat

    again = tools.cancel_job(long_id, db_path=db, running=True)["error"]
    assert again["code"] == "cancel_failed" and again["details"]["job_status"] == "cancelled"
    assert "only pending and running jobs can be cancelled" in again["message"]
    bad = tools.cancel_job(long_id, db_path=db, running="yes")["error"]
    assert bad["code"] == "invalid_argument" and "pass running=true" in bad["message"]


def test_cancelling_a_workflow_ends_its_pending_and_running_steps(db_path, make_worker):
    db = str(db_path)
    steps = [{"id": "after", "function": "support.jobs.noop", "depends_on": ["long"]},
             {"id": "quick", "function": "support.jobs.identity", "params": {"value": 1}}]
    submitted, key = long_step_running(db_path, make_worker, steps, concurrency=2)
    workflow_id, ids = submitted["workflow_id"], submitted["step_id_to_job_id"]
    wait_until(lambda: tools.get_job_status(ids["quick"], db_path=db)["status"]["status"]
               == "completed", what="the quick step completed")

    ended = workflow_tools.cancel_workflow(workflow_id, db_path=db)
    assert ended["success"], ended
    assert (ended["workflow_id"], ended["name"], ended["cancelled"], ended["done"]) == \
        (workflow_id, "cancel me", 2, True)
    assert (ended["counts"]["cancelled"], ended["counts"]["completed"], ended["total"]) == \
        (2, 1, 3)
    status = workflow_tools.get_workflow_status(workflow_id, db_path=db)
    assert {job["name"]: job["status"] for job in status["jobs"]} == {
        "long": "cancelled", "noop": "cancelled", "identity": "completed"}
    assert jobs.event(f"{key}:stopped").wait(5)
    assert workflow_tools.cancel_workflow(workflow_id, db_path=db)["cancelled"] == 0
    missing = workflow_tools.cancel_workflow("nope", db_path=db)["error"]
    assert missing["code"] == "not_found" and "gigq_list_workflows" in missing["message"]


def test_refused_workflows_write_nothing(db_path):
    db = str(db_path)
    for steps in ([{"id": "a", "function": "support.jobs.noop", "depends_on": ["a"]}],
                  [{"id": "a", "function": "support.jobs.noop"},
                   {"id": "b", "function": "support.jobs.noop_missing"}]):
        assert not workflow_tools.submit_workflow("w", steps, db_path=db)["success"]
    assert tools.queue_stats(db_path=db)["stats"]["total"] == 0
    assert workflow_tools.list_workflows(db_path=db)["count"] == 0


def test_run_worker_stops_when_pending_jobs_are_not_ready(db_path):
    db = str(db_path)
    job_id = tools.submit_job("support.jobs.fail", "later", max_attempts=2, retry_delay=600,
                              db_path=db)["job_id"]
    ran = worker_tool.run_worker(seconds=30, db_path=db)
    assert ran["stopped_because"] == "pending_jobs_not_ready", ran
    assert ran["elapsed_seconds"] < 10 and ran["worker_required"] is True
    assert tools.get_job_status(job_id, db_path=db)["status"]["attempts"] == 1


def test_run_worker_returns_a_job_still_running_at_the_time_limit(db_path, request):
    db = str(db_path)
    key = f"mcp-limit-{request.node.name}"
    job_id = tools.submit_job("support.jobs.block_until_released", "slow",
                              params={"key": key}, db_path=db)["job_id"]
    try:
        ran = worker_tool.run_worker(seconds=0.5, db_path=db)
    finally:
        jobs.event(f"{key}:release").set()  # the abandoned attempt ends; its result is fenced
    assert ran["stopped_because"] == "time_limit", ran
    assert ran["returned_to_queue"] == [job_id] and "more seconds" in ran["message"]
    assert tools.get_job_status(job_id, db_path=db)["status"]["status"] == "pending"
    wait_until(lambda: not any(thread.name.startswith(ran["worker_id"])
                               for thread in threading.enumerate()),
               what="the abandoned attempt's thread ended")
    assert tools.get_job_status(job_id, db_path=db)["status"]["status"] == "pending"


def test_run_worker_runs_steps_on_processes(db_path):
    db = str(db_path)
    ids = [tools.submit_job("support.jobs.whoami", f"step {i}", params={"value": i},
                            db_path=db)["job_id"] for i in range(3)]
    ran = worker_tool.run_worker(seconds=60, concurrency=2, executor="processes", db_path=db)
    assert ran["stopped_because"] == "no_pending_jobs" and ran["executor"] == "processes", ran
    pids = {tools.get_job_status(job_id, db_path=db)["status"]["result"]["pid"]
            for job_id in ids}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    refused = worker_tool.run_worker(seconds=1, executor="forks", db_path=db)
    assert refused["error"]["code"] == "invalid_argument"
    assert "'threads' or 'processes'" in refused["error"]["message"]


def test_pickled_payloads_are_never_unpickled(db_path, tmp_path):
    db = str(db_path)
    marker = tmp_path / "unpickled"
    queue = JobQueue(db)
    job_id = queue.submit(Job("evil", jobs.identity, serializer="pickle",
                              params={"value": jobs.UnpicklingSideEffect(str(marker))}))
    queue.close()
    params = tools.get_job_status(job_id, db_path=db)["status"]["params"]
    assert params.startswith("<pickled") and not marker.exists()
    ran = worker_tool.run_worker(seconds=30, db_path=db)  # no --allow-pickle: refused
    assert ran["stats_after"]["failed"] == 1 and not marker.exists()


@pytest.mark.sqlite_only("reading a missing file is a SQLite matter")
def test_reading_a_missing_file_creates_nothing(db_path):
    db = str(db_path)
    assert tools.queue_stats(db_path=db)["stats"]["total"] == 0
    assert tools.list_jobs(db_path=db)["jobs"] == []
    assert workflow_tools.list_workflows(db_path=db)["workflows"] == []
    assert worker_tool.run_worker(seconds=1, db_path=db)["stopped_because"] == "no_pending_jobs"
    assert workflow_tools.get_workflow_status("w", db_path=db)["error"]["code"] == "not_found"
    assert workflow_tools.explain_workflow("w", db_path=db)["error"]["code"] == "not_found"
    assert workflow_tools.rerun_workflow("w", db_path=db)["error"]["code"] == "not_found"
    assert workflow_tools.cancel_workflow("w", db_path=db)["error"]["code"] == "not_found"
    assert not Path(db).exists()


def test_the_queue_of_a_call(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("GIGQ_DB_PATH", "GIGQ_FLOW_DB"):
        monkeypatch.delenv(name, raising=False)
    plain, typed = ServerSettings(), ServerSettings(db="typed.db")
    assert resolve_db(None, plain) == str(tmp_path / "gigq_flow.db")
    monkeypatch.setenv("GIGQ_FLOW_DB", "flow.db")
    assert resolve_db(None, plain) == str(tmp_path / "flow.db")
    monkeypatch.setenv("GIGQ_DB_PATH", "env.db")
    assert resolve_db(None, plain) == str(tmp_path / "env.db")
    assert resolve_db("", plain) == str(tmp_path / "env.db")  # blank: not given, as in GigQ
    assert resolve_db(None, typed) == str(tmp_path / "typed.db")
    assert resolve_db("call.db", typed) == str(tmp_path / "call.db")
    url = "postgresql://user:secret@localhost/db"
    assert resolve_db(url, typed) == url
    assert "secret" not in tools.queue_stats(db_path="postgresql://u:secret@127.0.0.1:1/x")[
        "error"]["message"]


def test_call_tool_checks_names_before_calling():
    assert catalog.call_tool("gigq_nothing", {})["error"]["code"] == "unknown_tool"
    assert catalog.call_tool("gigq_queue_stats", [1])["error"]["code"] == "invalid_argument"
    response = catalog.call_tool("gigq_queue_stats", {"settings": {}})
    assert "no argument 'settings'" in response["error"]["message"]
    for spec in catalog.TOOLS:
        assert spec.description and spec.input_schema()["additionalProperties"] is False
