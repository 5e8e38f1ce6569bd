"""Incremental runs from the command line: ``workflow status`` showing reused steps,
``workflow explain``, ``workflow rerun`` and the ``cache`` commands, run on real files
(in this process, one test as subprocesses: see support.cli), with real workers (threads
of the test process, or a ``gigq-flow worker`` subprocess)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support import jobs
from support.cli import assert_usage_error, cli, ok, ok_json, run_cli, start_cli, stop
from support.db import sql
from support.helpers import lines

import gigq_flow
from gigq_flow.cli.cache import duration

CACHED = "completed · cached"


def submit_chain(db: Path | str, log: Path, *, flag_dir: Path | None = None,
                 cache: bool | str = True) -> tuple[str, dict[str, str]]:
    """load -> check -> report, and a side step beside them, each logging its run to
    ``log``. With ``flag_dir``, ``check`` fails while the file ``flag_dir/check`` exists."""
    workflow = gigq_flow.Workflow("chain")
    load = workflow.add_task(jobs.record_call, params={"log_path": str(log), "label": "load"},
                             name="load")
    if flag_dir is None:
        check = workflow.add_task(jobs.record_call, depends_on=[load], name="check",
                                  params={"log_path": str(log), "label": "check"})
    else:
        check = workflow.add_task(jobs.fail_if_flag, depends_on=[load], name="check",
                                  params={"label": "check", "flag_dir": str(flag_dir)},
                                  max_attempts=1)
    report = workflow.add_task(jobs.identity, params={"value": "report"}, depends_on=[check],
                               name="report")
    side = workflow.add_task(jobs.record_call, params={"log_path": str(log), "label": "side"},
                             name="side")
    queue = gigq_flow.JobQueue(db)
    try:
        run = workflow.submit(queue, cache=cache)
    finally:
        queue.close()
    return run.id, {job.name: job.id for job in (load, check, report, side)}


@pytest.fixture
def worker(db, make_worker):
    """Two worker threads of the test process on the queue ``db``, running until teardown."""
    gigq_flow.JobQueue(db).close()
    started = make_worker(db, concurrency=2, polling_interval=0.1)
    started.start_background()
    return started


def wait_json(db: Path, *args: str) -> dict:
    """``workflow status ID --wait --json`` of a run that must complete."""
    return ok_json(cli(db, "workflow", "status", *args, "--wait", "--timeout", "60", "--json"))


# -- status and explain of a cached run -------------------------------------------------------
@pytest.mark.usefixtures("cli_subprocesses")
def test_a_second_run_reuses_every_step_and_status_and_explain_say_so(db, tmp_path, worker):
    log = tmp_path / "calls.log"
    first, first_ids = submit_chain(db, log)
    status = wait_json(db, first)
    assert status["succeeded"] and status["cached"] == 0
    assert [job["cached_from"] for job in status["jobs"]] == [None] * 4
    table = ok(cli(db, "workflow", "status", first))
    assert "cached" not in table and "4 completed" in table
    assert ok_json(cli(db, "workflow", "explain", first, "--json")) == {
        "load": "ran: no earlier result", "check": "ran: no earlier result",
        "side": "ran: no earlier result", "report": "ran: no earlier result"}

    second, _ = submit_chain(db, log)  # the same steps, submitted again with cache=True
    status = wait_json(db, second)
    assert status["succeeded"] and status["cached"] == 4
    assert status["results"] == {"load": "load", "check": "check", "side": "side",
                                 "report": "report"}
    assert {job["name"]: job["cached_from"] for job in status["jobs"]} == first_ids
    assert sorted(lines(log)) == ["check", "load", "side"]  # each ran once, in the first run

    table = ok(cli(db, "workflow", "status", second))
    assert "4/4 finished; 4 completed (4 cached)" in table
    assert table.count(CACHED) == 4
    reused = f"cached (from run {first})"
    assert ok_json(cli(db, "workflow", "explain", second, "--json")) == {
        "load": reused, "check": reused, "side": reused, "report": reused}
    explained = ok(cli(db, "workflow", "explain", second))
    assert f"workflow 'chain' ({second}): why each step ran or was reused" in explained
    rows = [line.strip().split(None, 1) for line in explained.splitlines()[3:]]
    assert rows == [[name, reused] for name in ("load", "check", "report", "side")]


def test_explain_lists_each_job_of_a_shared_name(db, worker):
    workflow = gigq_flow.Workflow("twins")
    for value in (1, 2):
        workflow.add_task(jobs.identity, params={"value": value}, name="twin")
    queue = gigq_flow.JobQueue(db)
    run_id = workflow.submit(queue, cache=True).id
    queue.close()
    wait_json(db, run_id)
    (reasons,) = ok_json(cli(db, "workflow", "explain", run_id, "--json")).values()
    # the twin that finished second found the other's entry: same step, other params
    assert len(reasons) == 2 and set(reasons) <= {"ran: no earlier result",
                                                  "ran: params changed"}
    rows = ok(cli(db, "workflow", "explain", run_id)).splitlines()[3:]
    assert [row.strip().split(None, 1) for row in rows] == [["twin", r] for r in reasons]


def test_explain_says_what_did_not_run(db, tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "check").touch()
    run_id, _ = submit_chain(db, tmp_path / "calls.log", flag_dir=flags)
    assert ok_json(cli(db, "workflow", "explain", run_id, "--json")) == {
        "load": "pending", "check": "pending", "report": "pending", "side": "pending"}
    while ok(cli(db, "worker", "--once")).strip() == "Processed one job.":
        pass
    assert ok_json(cli(db, "workflow", "explain", run_id, "--json")) == {
        "load": "ran: no earlier result", "check": "ran: failed",
        "report": "not run: upstream_failed", "side": "ran: no earlier result"}


# -- rerun ----------------------------------------------------------------------------------
def test_rerun_after_a_failure_runs_only_what_failed_and_its_dependents(db, tmp_path):
    log, flags = tmp_path / "calls.log", tmp_path / "flags"
    flags.mkdir()
    (flags / "check").touch()
    failed, failed_ids = submit_chain(db, log, flag_dir=flags)
    worker = start_cli("--db", db, "worker", "--concurrency", "2", "--polling-interval", "0.2",
                       cwd=db.parent)
    try:
        result = cli(db, "workflow", "status", failed, "--wait", "--timeout", "60", "--json")
        assert result.returncode == 1
        assert json.loads(result.stdout)["counts"]["failed"] == 1
        (flags / "check").unlink()  # the fix

        result = cli(db, "workflow", "rerun", failed, "--wait", "--timeout", "60", "--json")
    finally:
        code, _, err = stop(worker)
    assert code == 0, err
    rerun = ok_json(result)
    assert rerun["rerun_of"] == failed and rerun["cache"] is True and rerun["id"] != failed
    assert rerun["succeeded"] and rerun["cached"] == 2
    assert rerun["results"] == {"load": "load", "check": "check", "side": "side",
                                "report": "report"}
    reused = {job["name"]: job["cached_from"] for job in rerun["jobs"]}
    assert reused == {"load": failed_ids["load"], "side": failed_ids["side"], "check": None,
                      "report": None}
    assert sorted(lines(log)) == ["load", "side"]  # neither ran again
    assert ok_json(cli(db, "workflow", "explain", rerun["id"], "--json")) == {
        "load": f"cached (from run {failed})", "check": "ran: no earlier result",
        "side": f"cached (from run {failed})", "report": "ran: no earlier result"}
    listed = ok_json(cli(db, "workflows", "--json"))
    assert [w["id"] for w in listed] == [rerun["id"], failed]  # the failed run stays as it was
    assert listed[1]["state"] == "failed"


def test_rerun_prints_the_new_id_and_reminds_that_a_worker_runs_it(db, tmp_path):
    first, _ = submit_chain(db, tmp_path / "calls.log")
    result = cli(db, "workflow", "rerun", first)
    out = ok(result)
    assert out.startswith("Workflow submitted: ") and out.count("\n") == 1
    new_id = out.split()[-1]
    assert f"workflow {new_id} waits in the queue until a worker runs it" in result.stderr
    assert f"gigq-flow --db {db} worker --concurrency 4" in result.stderr
    status = ok_json(cli(db, "workflow", "status", new_id, "--json"))
    assert status["counts"]["pending"] == 4 and status["name"] == "chain"
    assert len(status["edges"]) == 2

    described = ok_json(cli(db, "workflow", "rerun", new_id, "--no-cache", "--json"))
    assert (described["rerun_of"], described["cache"], described["total"]) == (new_id, False, 4)
    assert described["worker_command_example"] == f"gigq-flow --db {db} worker --concurrency 4"
    assert [w["id"] for w in ok_json(cli(db, "workflows", "--json"))] == [
        described["id"], new_id, first]


def test_rerun_no_cache_and_recompute_run_every_step(db, tmp_path, worker):
    log = tmp_path / "calls.log"
    first, _ = submit_chain(db, log)
    wait_json(db, first)
    entries = {e["name"]: e for e in ok_json(cli(db, "cache", "list", "--json"))}

    off = ok_json(cli(db, "workflow", "rerun", first, "--no-cache", "--wait", "--json"))
    assert off["succeeded"] and off["cached"] == 0 and off["cache"] is False
    assert set(ok_json(cli(db, "workflow", "explain", off["id"], "--json")).values()) == {
        "ran: cache off"}
    assert sorted(lines(log)) == ["check", "check", "load", "load", "side", "side"]
    assert ok_json(cli(db, "cache", "list", "--json")) == list(entries.values())  # untouched

    again = ok_json(cli(db, "workflow", "rerun", first, "--recompute", "--wait", "--json"))
    assert again["succeeded"] and again["cached"] == 0 and again["cache"] == "recompute"
    assert set(ok_json(cli(db, "workflow", "explain", again["id"], "--json")).values()) == {
        "ran: recompute"}
    assert len(lines(log)) == 9
    refreshed = {e["name"]: e for e in ok_json(cli(db, "cache", "list", "--json"))}
    assert set(refreshed) == set(entries)
    assert all(refreshed[name]["workflow_id"] == again["id"] for name in refreshed)

    table = ok(cli(db, "workflow", "rerun", again["id"], "--wait"))
    assert table.startswith("Workflow submitted: ")
    assert "4 completed (4 cached)" in table and table.count(CACHED) == 4
    assert len(lines(log)) == 9


def test_rerun_wait_timeout_returns_the_pending_run_and_exits_1(db, tmp_path):
    first, _ = submit_chain(db, tmp_path / "calls.log")  # no worker runs anything
    result = cli(db, "workflow", "rerun", first, "--wait", "--timeout", "0.5", "--json")
    assert result.returncode == 1, result.stderr
    status = json.loads(result.stdout)
    assert status["done"] is False and status["counts"]["pending"] == 4
    assert f"workflow {status['id']} not finished within 0.5 s" in result.stderr


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, named", [
    (("workflow", "rerun", "no-such-run"), "no workflow with id 'no-such-run'"),
    (("workflow", "rerun", "no-such-run", "--wait"), "'gigq-flow workflows' lists them"),
    (("workflow", "explain", "no-such-run"), "no workflow with id 'no-such-run'"),
    (("workflow", "explain", "no-such-run", "--json"), "no workflow with id"),
    (("workflow", "status", "no-such-run"), "no workflow with id 'no-such-run'"),
    (("workflow", "rerun", "ID", "--no-cache", "--recompute"), "not allowed with argument"),
    (("workflow", "rerun", "ID", "--timeout", "5"), "--timeout applies to --wait"),
    (("workflow", "rerun", "ID", "--wait", "--timeout", "0"), "must be a number of seconds > 0"),
    (("cache", "list", "--limit", "-1"), "must be an integer >= 0"),
    (("cache",), "the following arguments are required"),
    (("cache", "drop"), "invalid choice: 'drop'"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(db, tmp_path, args, named):
    run_id, _ = submit_chain(db, tmp_path / "calls.log")
    before = sql(db, "SELECT id FROM jobs ORDER BY id")
    args = tuple(run_id if arg == "ID" else arg for arg in args)
    assert_usage_error(cli(db, *args), named)
    assert sql(db, "SELECT id FROM jobs ORDER BY id") == before
    assert sql(db, "SELECT COUNT(*) FROM workflows") == [(1,)]


@pytest.mark.parametrize("text", ["abc", "-5", "7w", "", "5 days", "1.5.2h", "9" * 400 + "d"])
def test_a_bad_duration_exits_2_naming_the_accepted_forms(db, tmp_path, worker, text):
    first, _ = submit_chain(db, tmp_path / "calls.log")
    wait_json(db, first)
    result = cli(db, "cache", "clear", "--older-than", text)
    line = assert_usage_error(result, "--older-than", "90s, 30m, 12h, 7d",
                              "plain number of seconds")
    assert repr(text) in line
    assert len(ok_json(cli(db, "cache", "list", "--json"))) == 4


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("45", 45), ("1.5h", 5400),
    ("0.5", 0.5), (" 2D ", 172800), ("0", 0),
])
def test_durations(text, seconds):
    assert duration(text) == seconds


def test_the_commands_refuse_a_missing_queue_file(tmp_path):
    missing = tmp_path / "typo.db"
    for args in (("cache", "list"), ("cache", "clear"), ("workflow", "explain", "x"),
                 ("workflow", "rerun", "x")):
        assert_usage_error(cli(missing, *args), "no queue at", str(missing))
    assert not missing.exists()


# -- cache list and clear -------------------------------------------------------------------
def test_cache_list_and_clear(db, tmp_path, worker):
    assert ok(cli(db, "cache", "list")).strip() == "No cache entries."
    assert ok_json(cli(db, "cache", "list", "--json")) == []
    first, first_ids = submit_chain(db, tmp_path / "calls.log")
    wait_json(db, first)
    second, _ = submit_chain(db, tmp_path / "calls.log")
    wait_json(db, second)

    entries = ok_json(cli(db, "cache", "list", "--json"))
    assert {e["name"] for e in entries} == {"load", "check", "side", "report"}
    by_name = {e["name"]: e for e in entries}
    assert by_name["load"]["step"] == "support.jobs.record_call"
    assert by_name["report"]["step"] == "support.jobs.identity"
    assert all(e["workflow_id"] == first and e["used_at"] >= e["created_at"] for e in entries)
    assert {e["job_id"] for e in entries} == set(first_ids.values())
    assert by_name["load"]["size"] == len('"load"') and by_name["load"]["serializer"] == "json"
    assert len(ok_json(cli(db, "cache", "list", "--limit", "1", "--json"))) == 1
    table = ok(cli(db, "cache", "list"))
    for entry in entries:
        assert entry["key"] in table and entry["name"] in table
    assert "support.jobs.identity" in table and "6 B" in table and first in table

    # entries not used for two days go; the others stay
    two_days_ago = (datetime.now() - timedelta(days=2)).isoformat()
    sql(db, "UPDATE cache_entries SET created_at = ?, used_at = ? WHERE name IN (?, ?)",
        (two_days_ago, two_days_ago, "load", "side"))
    assert ok(cli(db, "cache", "clear", "--older-than", "3d")).strip() == \
        "Cleared 0 cache entries not used for 3d."
    assert ok(cli(db, "cache", "clear", "--older-than", "36h")).strip() == \
        "Cleared 2 cache entries not used for 36h."
    assert {e["name"] for e in ok_json(cli(db, "cache", "list", "--json"))} == {
        "check", "report"}
    assert ok_json(cli(db, "cache", "clear", "--json")) == {
        "cleared": 2, "older_than_seconds": None}
    assert ok(cli(db, "cache", "list")).strip() == "No cache entries."
    assert ok(cli(db, "cache", "clear")).strip() == "Cleared 0 cache entries."

    # the jobs keep their results; a cached run runs every step again
    assert ok_json(cli(db, "workflow", "status", second, "--json"))["results"]["load"] == "load"
    third = ok_json(cli(db, "workflow", "rerun", second, "--wait", "--json"))
    assert third["succeeded"] and third["cached"] == 0
    assert set(ok_json(cli(db, "workflow", "explain", third["id"], "--json")).values()) == {
        "ran: no earlier result"}
    assert len(ok_json(cli(db, "cache", "list", "--json"))) == 4


# -- the same commands on the PostgreSQL backend -------------------------------------------
def test_the_cache_commands_work_on_a_postgres_queue(postgres_url, tmp_path):
    def pg(*args):
        return run_cli("--db", postgres_url, *args, cwd=tmp_path)

    def drain():
        while ok(pg("worker", "--once")).strip() == "Processed one job.":
            pass

    log = tmp_path / "calls.log"
    first, _ = submit_chain(postgres_url, log)
    drain()
    new_id = ok(pg("workflow", "rerun", first)).split()[-1]
    drain()
    status = ok_json(pg("workflow", "status", new_id, "--json"))
    assert status["succeeded"] and status["cached"] == 4
    assert "4 completed (4 cached)" in ok(pg("workflow", "status", new_id))
    assert set(ok_json(pg("workflow", "explain", new_id, "--json")).values()) == {
        f"cached (from run {first})"}
    assert len(ok_json(pg("cache", "list", "--json"))) == 4
    assert ok_json(pg("cache", "clear", "--older-than", "1h", "--json"))["cleared"] == 0
    assert ok(pg("cache", "clear")).strip() == "Cleared 4 cache entries."
    assert ok_json(pg("cache", "list", "--json")) == []
    assert sorted(lines(log)) == ["check", "load", "side"]
