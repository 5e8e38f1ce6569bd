"""The ``gigq-flow`` job commands, run against real files in this process
(see support.cli); the console script, a submit-run-status round, a module of the working
directory and a worker stopped by SIGTERM run as real subprocesses.

GigQ's commands and options (submit, status, list, stats, cancel, requeue, clear,
worker), ``--json`` output, exit statuses, and bad input: one line on stderr, status 2.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from support import jobs
from support.cli import (
    assert_one_error_line,
    assert_usage_error,
    cli,
    cli_env,
    ok,
    ok_json,
    run_cli,
    script_command,
    start_cli,
    stop,
    submitted_id,
)
from support.helpers import REPO_ROOT, wait_until

import gigq_flow


def job_status(db: Path, job_id: str) -> str:
    queue = gigq_flow.JobQueue(db)
    try:
        return queue.get_status(job_id)["status"]
    finally:
        queue.close()


# -- the command itself -------------------------------------------------------------------
def test_help_lists_every_command(tmp_path):
    out = ok(run_cli("--help", cwd=tmp_path))
    for command in ("submit", "status", "logs", "list", "stats", "cancel", "requeue", "clear",
                    "worker", "workflows", "workflow", "demo", "limits"):
        assert command in out
    assert "--db" in out


def test_console_script_runs_the_same_command(tmp_path, db):
    command = script_command()
    if command is None:
        pytest.skip("the gigq-flow console script is not installed next to this interpreter")
    job_id = submitted_id(run_cli("--db", db, "submit", "support.jobs.add", "-p", "a=1",
                                  "-p", "b=2", cwd=tmp_path, command=command))
    listed = ok_json(run_cli("--db", db, "list", "--json", cwd=tmp_path, command=command))
    assert [job["id"] for job in listed] == [job_id]
    assert_usage_error(run_cli("--db", db, "status", "nope", cwd=tmp_path, command=command),
                       "Job nope not found")


def test_default_db_is_gigq_flow_db_in_the_working_directory(tmp_path):
    submitted_id(run_cli("submit", "support.jobs.add", "-p", "a=1", "-p", "b=2", cwd=tmp_path))
    assert (tmp_path / "gigq_flow.db").exists()
    assert ok_json(run_cli("stats", "--json", cwd=tmp_path))["pending"] == 1


def test_db_may_follow_the_command(tmp_path, db):
    submitted_id(run_cli("submit", "--db", db, "support.jobs.add", "-p", "a=1", "-p", "b=2",
                         cwd=tmp_path))
    assert ok_json(run_cli("stats", "--db", db, "--json", cwd=tmp_path))["total"] == 1
    assert not (tmp_path / "gigq_flow.db").exists()


# -- submit, worker --once, status ---------------------------------------------------------
@pytest.mark.usefixtures("cli_subprocesses")
def test_submit_run_once_and_read_the_result(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.add", "--name", "adder",
                              "--param", "a=2", "-p", "b=3"))
    assert job_status(db, job_id) == "pending"

    assert ok(cli(db, "worker", "--once")).strip() == "Processed one job."
    assert ok(cli(db, "worker", "--once")).strip() == "No jobs available to process."

    record = ok_json(cli(db, "status", job_id, "--json"))
    assert record["status"] == "completed"
    assert record["result"] == 5
    assert record["params"] == {"a": 2, "b": 3}
    assert record["name"] == "adder"
    assert [e["status"] for e in record["executions"]] == ["completed"]

    plain = ok(cli(db, "status", job_id)).splitlines()
    assert plain[:2] == [f"Job: adder ({job_id})", "Status: completed"]
    assert "Attempts: 1 / 3" in plain and "Function: support.jobs.add" in plain
    assert not any(line.startswith(("Parameters", "Result")) for line in plain)
    full = ok(cli(db, "status", job_id, "--show-params", "--show-result", "--show-executions"))
    assert "\nParameters:\n  a: 2\n  b: 3\n" in full
    assert "\nResult:\n  5\n" in full
    assert record["executions"][0]["id"] in full


def test_param_values_are_json_when_they_parse_else_strings_never_evaluated(db, tmp_path):
    canary = tmp_path / "evaluated"
    job_id = submitted_id(cli(
        db, "submit", "support.jobs.echo_params",
        "-p", "n=3", "-p", "f=2.5", "-p", "t=true", "-p", "none=null", "-p", "s=hello",
        "-p", "quoted=\"3\"", "-p", "items=[1, \"x\"]", "-p", 'obj={"k": {"v": 1}}',
        "-p", "empty=", "-p", "eq=a=b", "-p", "nan=NaN",
        "-p", f"code=__import__('pathlib').Path('{canary}').touch()",
    ))
    params = ok_json(cli(db, "status", job_id, "--json"))["params"]
    assert params == {
        "n": 3, "f": 2.5, "t": True, "none": None, "s": "hello", "quoted": "3",
        "items": [1, "x"], "obj": {"k": {"v": 1}}, "empty": "", "eq": "a=b", "nan": "NaN",
        "code": f"__import__('pathlib').Path('{canary}').touch()",
    }
    ok(cli(db, "worker", "--once"))
    assert ok_json(cli(db, "status", job_id, "--json"))["result"] == params
    assert not canary.exists()


def test_submit_options_reach_the_job(db):
    parent = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=1"))
    job_id = submitted_id(cli(
        db, "submit", "support.jobs.sleep_for", "-p", "seconds=0", "--name", "napper",
        "--priority", "5",
        "--max-attempts", "2", "--timeout", "30", "--retry-delay", "1",
        "--description", "a short nap", "--depends-on", parent,
    ))
    record = ok_json(cli(db, "status", job_id, "--json"))
    assert (record["name"], record["priority"], record["max_attempts"], record["timeout"],
            record["retry_delay"], record["description"], record["dependencies"]) == \
        ("napper", 5, 2, 30, 1, "a short nap", [parent])
    assert record["function_module"] == "support.jobs" and record["function_name"] == "sleep_for"


def test_submit_a_task_keeps_its_options_unless_overridden(db):
    first = ok_json(cli(db, "status", submitted_id(cli(db, "submit", "support.jobs.tagged")),
                        "--json"))
    assert (first["name"], first["priority"], first["max_attempts"], first["description"]) == \
        ("tagged", 7, 5, "from @task")
    second = ok_json(cli(db, "status", submitted_id(
        cli(db, "submit", "support.jobs.tagged", "--priority", "1", "-p", "x=4")), "--json"))
    assert (second["priority"], second["max_attempts"], second["params"]) == (1, 5, {"x": 4})
    ok(cli(db, "worker", "--once"))
    ok(cli(db, "worker", "--once"))
    assert ok_json(cli(db, "status", second["id"], "--json"))["result"] == 40


def test_a_lambda_named_by_its_path_runs_by_that_path(db):
    status = ok_json(cli(db, "status", submitted_id(cli(db, "submit", "support.jobs.lambda_fn")),
                         "--json"))
    assert (status["function_module"], status["function_name"]) == ("support.jobs", "lambda_fn")
    ok(cli(db, "worker", "--once"))  # no --allow-pickle: nothing was shipped by value
    assert ok_json(cli(db, "status", status["id"], "--json"))["result"] == "from a lambda"


@pytest.mark.usefixtures("cli_subprocesses")
def test_submit_imports_modules_of_the_working_directory(tmp_path, db):
    (tmp_path / "localjobs.py").write_text("def hello(who):\n    return 'hello ' + who\n")
    env = cli_env(PYTHONPATH=str(REPO_ROOT))  # this checkout, and nothing else, on the path
    job_id = submitted_id(run_cli("--db", db, "submit", "localjobs.hello", "-p", "who=you",
                                  cwd=tmp_path, env=env))
    ok(run_cli("--db", db, "worker", "--once", cwd=tmp_path, env=env))
    assert ok_json(cli(db, "status", job_id, "--json"))["result"] == "hello you"


# -- list, stats ----------------------------------------------------------------------------
def test_list_and_stats_as_tables_and_json(db):
    ids = [submitted_id(cli(db, "submit", "support.jobs.add", "--name", f"job{i}",
                            "-p", f"a={i}", "-p", "b=0")) for i in range(3)]
    failing = submitted_id(cli(db, "submit", "support.jobs.fail", "--max-attempts", "1"))
    for _ in range(4):
        ok(cli(db, "worker", "--once"))

    listed = ok_json(cli(db, "list", "--json"))
    assert {job["id"] for job in listed} == {*ids, failing}
    assert [job["id"] for job in listed][:1] == [failing]  # newest first
    assert ok_json(cli(db, "list", "--limit", "2", "--json")).__len__() == 2
    assert ok_json(cli(db, "list", "--limit", "0", "--json")) == []
    failed = ok_json(cli(db, "list", "--status", "failed", "--json"))
    assert [(job["id"], job["error"]) for job in failed] == \
        [(failing, "RuntimeError: planned failure")]

    table = ok(cli(db, "list"))
    for job_id in ids:
        assert job_id in table
    assert "job1" in table and "failed" in table and "completed" in table
    assert ok(cli(db, "list", "--status", "running")) == "No jobs found.\n"

    counts = ok_json(cli(db, "stats", "--json"))
    assert counts == {"pending": 0, "running": 0, "completed": 3, "failed": 1, "cancelled": 0,
                      "timeout": 0, "upstream_failed": 0, "total": 4}
    plain = ok(cli(db, "stats"))
    assert "completed" in plain and "total" in plain


# -- cancel, requeue, clear -----------------------------------------------------------------
def test_cancel_and_requeue(db):
    root = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=1"))
    child = submitted_id(cli(db, "submit", "support.jobs.sum_parents", "--depends-on", root))

    assert ok(cli(db, "cancel", root)).strip() == f"Job {root} cancelled."
    assert (job_status(db, root), job_status(db, child)) == ("cancelled", "upstream_failed")
    again = cli(db, "cancel", root)
    assert again.returncode == 1
    assert_one_error_line(again, f"Could not cancel job {root}: it is cancelled",
                          "only pending jobs")

    assert ok(cli(db, "requeue", root)).strip() == f"Job {root} requeued."
    assert (job_status(db, root), job_status(db, child)) == ("pending", "pending")
    refused = cli(db, "requeue", root)
    assert refused.returncode == 1
    assert_one_error_line(refused, f"Could not requeue job {root}: it is pending",
                          "failed, timeout, cancelled")

    ok(cli(db, "worker", "--once"))
    ok(cli(db, "worker", "--once"))
    assert ok_json(cli(db, "status", child, "--json"))["result"] == 2


def test_requeue_a_failed_job(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.fail", "--max-attempts", "1"))
    ok(cli(db, "worker", "--once"))
    assert job_status(db, job_id) == "failed"
    ok(cli(db, "requeue", job_id))
    record = ok_json(cli(db, "status", job_id, "--json"))
    assert (record["status"], record["attempts"], record["error"]) == ("pending", 0, None)


def test_clear_removes_finished_jobs_before_a_time(db):
    done = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=1"))
    ok(cli(db, "worker", "--once"))
    waiting = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=1"))

    assert ok(cli(db, "clear", "--before", "2000-01-01")).strip() == "Cleared 0 completed jobs."
    assert ok(cli(db, "clear", "--before", "1")).strip() == \
        "Cleared 0 completed jobs."  # completed less than a day ago
    assert ok(cli(db, "clear", "--before", "2999-01-01T00:00")).strip() == \
        "Cleared 1 completed jobs."  # GigQ's words, whatever the count
    assert [job["id"] for job in ok_json(cli(db, "list", "--json"))] == [waiting]
    assert_usage_error(cli(db, "status", done), f"Job {done} not found")
    ok(cli(db, "worker", "--once"))
    ok(cli(db, "clear"))
    assert ok_json(cli(db, "stats", "--json"))["total"] == 0


# -- worker ---------------------------------------------------------------------------------
def test_worker_runs_jobs_and_stops_gracefully_on_sigterm(db):
    gigq_flow.JobQueue(db).close()  # the file exists before the worker starts
    worker = start_cli("--db", db, "worker", "--concurrency", "2", "--polling-interval", "0.5",
                       "--worker-id", "cli-worker", cwd=db.parent)
    try:
        quick = [submitted_id(cli(db, "submit", "support.jobs.add", "-p", f"a={i}", "-p", "b=1"))
                 for i in range(3)]
        wait_until(lambda: all(job_status(db, job_id) == "completed" for job_id in quick))
        slow = submitted_id(cli(db, "submit", "support.jobs.sleep_for", "-p", "seconds=1.5"))
        wait_until(lambda: job_status(db, slow) == "running", interval=0.01)
        stopped_at = time.monotonic()
        status, out, err = stop(worker)  # one SIGTERM
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert status == 0, err
    assert out == "Starting worker cli-worker...\n"
    assert "Traceback" not in err
    assert time.monotonic() - stopped_at < 10
    record = ok_json(cli(db, "status", slow, "--json"))
    assert (record["status"], record["result"]) == ("completed", 1.5)  # finished, not lost
    assert record["executions"][-1]["worker_id"].startswith("cli-worker")
    assert "started" in err and "stopped" in err  # the worker logs on stderr


def test_a_gigq_file_is_read_and_run_in_place(db):
    gigq = pytest.importorskip("gigq")
    job = gigq.Job(name="from-gigq", function=jobs.add, params={"a": 20, "b": 22})
    gigq.JobQueue(str(db)).submit(job)
    listed = ok_json(cli(db, "list", "--json"))
    assert [(j["id"], j["name"], j["status"]) for j in listed] == [(job.id, "from-gigq", "pending")]
    ok(cli(db, "worker", "--once"))
    assert ok_json(cli(db, "status", job.id, "--json"))["result"] == 42


# -- bad input: one line on stderr, exit status 2, nothing written -------------------------
@pytest.mark.parametrize(
    "args, fragments",
    [
        (["submit", "nosuchmodule.run"], ["cannot import 'nosuchmodule.run'", "No module"]),
        (["submit", "support.jobs.missing"], ["has no attribute 'missing'"]),
        (["submit", "support.jobs.NOT_A_FUNCTION"], ["is a int, not a function"]),
        (["submit", "support"], ["module.function"]),
        (["submit", "brokenmodule.run"], ["cannot import", "ZeroDivisionError"]),
        (["submit", "support.jobs.add", "-p", "a"], ["--param 'a' is not KEY=VALUE"]),
        (["submit", "support.jobs.add", "-p", "=3"], ["is not KEY=VALUE"]),
        (["submit", "support.jobs.add", "-p", "1a=3"], ["is not a parameter name"]),
        (["submit", "support.jobs.add", "-p", "a=1", "-p", "a=2"], ["given twice"]),
        (["submit", "support.jobs.add", "--max-attempts", "0"], ["--max-attempts", ">= 1"]),
        (["submit", "support.jobs.add", "--priority", "high"], ["--priority", "invalid int"]),
        (["submit", "support.jobs.add", "--depends-on", "no-such-job"], ["no-such-job"]),
        (["worker", "--concurrency", "0"], ["--concurrency"]),
        (["worker", "--polling-interval", "-1"], ["--polling-interval"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    ],
)
def test_bad_input_on_a_new_file(tmp_path, db, args, fragments):
    (tmp_path / "brokenmodule.py").write_text("1 / 0\n")
    assert_usage_error(cli(db, *args), *fragments)
    assert not db.exists()  # nothing written when a check fails


def test_cancel_running_ends_a_running_steps_attempt(db):
    key = f"cli-cancel-{db.parent.name}"
    queue = gigq_flow.JobQueue(db)
    job_id = queue.submit(gigq_flow.Job("long", jobs.work_until_cancelled,
                                        params={"key": key}))
    with gigq_flow.Worker(db, polling_interval=0.1):
        assert jobs.event(f"{key}:started").wait(20)
        refused = cli(db, "cancel", job_id)
        assert refused.returncode == 1
        assert_one_error_line(refused, f"Could not cancel job {job_id}: it is running",
                              "add --running to end a running one")
        assert ok(cli(db, "cancel", job_id, "--running")) == f"Job {job_id} cancelled.\n"
        assert jobs.event(f"{key}:stopped").wait(5)  # the step was told
    assert queue.get_status(job_id)["status"] == "cancelled"
    again = cli(db, "cancel", job_id, "--running")
    assert_one_error_line(again, f"Could not cancel job {job_id}: it is cancelled",
                          "only pending and running jobs")


@pytest.fixture
def queue_with_a_job(db):
    submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=1"))
    return db


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["status", "no-such-job"], ["Job no-such-job not found in ", "jobs.db"]),
        (["status", "no-such-job", "--json"], ["Job no-such-job not found"]),
        (["cancel", "no-such-job"], ["Job no-such-job not found"]),
        (["requeue", "no-such-job"], ["Job no-such-job not found"]),
        (["list", "--limit", "-1"], ["--limit", "must be an integer >= 0, got -1"]),
        (["list", "--limit", "ten"], ["--limit", "invalid integer value"]),
        (["list", "--status", "sleeping"], ["--status", "invalid choice"]),
        (["clear", "--before", "last tuesday"], ["--before", "ISO timestamp"]),
        (["clear", "--before", "-3"], ["--before", ">= 0"]),
        (["workflow", "status", "no-such-workflow"], ["no workflow with id 'no-such-workflow'"]),
        (["workflow", "graph", "no-such-workflow", "-o", "x.svg"], ["no workflow with id"]),
        (["workflow", "graph", "no-such-workflow", "-o", "x.gif"], ["picture format", ".svg"]),
        (["workflow", "graph", "x", "-o", "missing/x.svg"], ["does not exist"]),
        (["workflow"], ["required"]),
    ],
)
def test_bad_input_on_a_queue(queue_with_a_job, args, fragments):
    assert_usage_error(cli(queue_with_a_job, *args), *fragments)


def _text_file(path: Path) -> None:
    path.write_text("id,name\n1,not a queue\n")


def _other_sqlite_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make, fragment", [
    (_text_file, "is not a SQLite database"),
    (_other_sqlite_file, "not a job queue"),
    (lambda path: path.mkdir(), "is a directory"),
    (lambda path: None, "does not exist"),
])
@pytest.mark.parametrize("command", [
    ["list"], ["stats", "--json"], ["status", "x"], ["workflows"],
    ["submit", "support.jobs.add", "-p", "a=1", "-p", "b=2"], ["worker", "--once"],
])
def test_a_file_that_is_not_a_queue(tmp_path, make, fragment, command):
    path = tmp_path / "not-a-queue.db"
    make(path)
    before = path.read_bytes() if path.is_file() else b""
    if fragment == "does not exist" and command[0] in ("submit", "worker"):
        ok(run_cli("--db", path, *command, cwd=tmp_path))  # these create a new queue
        return
    assert_usage_error(run_cli("--db", path, *command, cwd=tmp_path), fragment)
    if path.is_file():
        assert path.read_bytes() == before  # a refused file is left untouched


def test_looking_at_pickled_jobs_never_unpickles_them(tmp_path, db):
    canary = tmp_path / "unpickled"
    queue = gigq_flow.JobQueue(db)
    workflow = gigq_flow.Workflow("pickled", serializer="pickle")
    job = workflow.add_task(jobs.echo_params, params={"x": jobs.UnpicklingSideEffect(str(canary))})
    run = workflow.submit(queue)
    queue.close()

    record = ok_json(cli(db, "status", job.id, "--json"))
    assert record["params"].startswith("<pickled, ")
    assert record["serializer"] == "pickle"
    ok(cli(db, "status", job.id, "--show-params", "--show-result"))
    (listed,) = ok_json(cli(db, "list", "--json"))
    assert listed["params"] == record["params"]
    ok(cli(db, "workflow", "status", run.id, "--json"))
    ok(cli(db, "cancel", job.id))
    ok(cli(db, "requeue", job.id))
    assert not canary.exists()
    # a worker refuses the pickled payload unless told it may trust the file
    ok(cli(db, "worker", "--once"))
    assert ok_json(cli(db, "status", job.id, "--json"))["status"] == "failed"
    assert not canary.exists()


def test_worker_allow_pickle_and_allow_module(db):
    queue = gigq_flow.JobQueue(db)
    workflow = gigq_flow.Workflow("pickled", serializer="pickle")
    job = workflow.add_task(jobs.echo_params, params={"x": {1, 2}})
    workflow.submit(queue)
    queue.close()
    ok(cli(db, "worker", "--once", "--allow-pickle"))
    record = ok_json(cli(db, "status", job.id, "--json"))
    assert record["status"] == "completed", record["error"]
    assert record["result"].startswith("<pickled, ")

    other = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=1"))
    ok(cli(db, "worker", "--once", "--allow-module", "json"))
    refused = ok_json(cli(db, "status", other, "--json"))
    assert refused["status"] == "failed" and "support.jobs" in refused["error"]
    ok(cli(db, "requeue", other))
    ok(cli(db, "worker", "--once", "--allow-module", "support.jobs"))
    assert ok_json(cli(db, "status", other, "--json"))["result"] == 2


def test_an_unreachable_database_server_is_one_line_without_its_password(tmp_path):
    pytest.importorskip("psycopg")
    result = run_cli("--db", "postgresql://bob:s3cret@127.0.0.1:1/nodb", "list", cwd=tmp_path)
    line = assert_usage_error(result, "postgresql://bob:***@127.0.0.1:1/nodb")
    assert "s3cret" not in line


def test_a_missing_database_is_named_at_once(postgres_url, tmp_path):
    missing = postgres_url.split("?")[0].rsplit("/", 1)[0] + "/no_such_database"
    started = time.monotonic()
    result = run_cli("--db", missing, "list", cwd=tmp_path)
    assert_usage_error(result, "no_such_database", "does not exist")
    assert time.monotonic() - started < 8  # not the 10 s a pool waits before giving up


def test_locations_are_described_without_passwords():
    from gigq_flow.locations import describe_location

    assert describe_location("postgresql://u:pw@host:5432/db?x=1") == \
        "postgresql://u:***@host:5432/db?x=1"
    assert describe_location("postgresql://host/db") == "postgresql://host/db"
    assert describe_location("jobs.db").endswith("/jobs.db")


def test_a_hand_edited_row_does_not_hide_the_queue(db):
    bad = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=1", "-p", "b=1"))
    good = submitted_id(cli(db, "submit", "support.jobs.add", "-p", "a=2", "-p", "b=2"))
    conn = sqlite3.connect(db)
    conn.execute("UPDATE jobs SET params = '{not json', dependencies = '[oops' WHERE id = ?",
                 (bad,))
    conn.commit()
    conn.close()
    listed = {job["id"]: job for job in ok_json(cli(db, "list", "--json"))}
    assert set(listed) == {bad, good}
    assert listed[bad]["params"] == "{not json"  # kept as stored, and named as unreadable
    assert [error.split(" cannot")[0] for error in listed[bad]["decode_errors"]] == \
        [f"params of job {bad}", f"dependencies of job {bad}"]
    assert listed[good]["params"] == {"a": 2, "b": 2} and "decode_errors" not in listed[good]
    assert bad in ok(cli(db, "list"))
    assert "cannot be decoded as json" in ok(cli(db, "status", bad, "--show-params"))
