"""Where the commands find their options besides the flags: ``--db`` after any command
(GigQ's guides write ``gigq worker --db jobs.db``), and the variables read as defaults
under the flags: ``--db`` over ``$GIGQ_FLOW_DB`` over GigQ's ``$GIGQ_DB`` over
``gigq_flow.db``; ``--worker-id`` over ``$GIGQ_WORKER_ID``; ``--polling-interval`` over
``$GIGQ_POLLING_INTERVAL``. A malformed value is a usage error that names the variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest
from support import jobs
from support.cli import assert_usage_error, cli_env, ok, ok_json, run_cli, submitted_id
from support.helpers import drain

import gigq_flow
from gigq_flow.cli import build_parser
from gigq_flow.cli.common import UsageError
from gigq_flow.cli.workers import worker_options


def command_names(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every command that runs something: ``list``, ``workflow status``, ..."""
    names = []
    for action in parser._actions:
        if isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                nested = command_names(sub, f"{prefix}{name} ")
                names += nested or [f"{prefix}{name}"]
    return names


# -- --db after the command ----------------------------------------------------------------
def test_db_after_the_command_works_for_every_command(tmp_path, make_worker):
    db = tmp_path / "jobs.db"
    queue = gigq_flow.JobQueue(db)
    workflow = gigq_flow.Workflow("after")
    task = workflow.add_task(jobs.add, params={"a": 1, "b": 2})
    run = workflow.submit(queue)
    drain(make_worker(db))
    waiting = queue.submit(gigq_flow.Job("waiting", jobs.add, params={"a": 2, "b": 2}))
    queue.close()
    elsewhere = tmp_path / "elsewhere"  # the working directory: no queue of its own
    elsewhere.mkdir()

    Check = Callable[[str], bool]
    cases: dict[str, tuple[list[str], Check]] = {
        "submit": (["submit", "support.jobs.noop"], lambda out: out.startswith("Job submitted")),
        "status": (["status", task.id], lambda out: out.startswith(f"Job: add ({task.id})")),
        "list": (["list"], lambda out: task.id in out and waiting in out),
        "logs": (["logs", task.id, "--json"], lambda out: '"status": "completed"' in out),
        "stats": (["stats", "--json"], lambda out: '"total": 3' in out),
        "cancel": (["cancel", waiting], lambda out: out == f"Job {waiting} cancelled.\n"),
        "requeue": (["requeue", waiting], lambda out: out == f"Job {waiting} requeued.\n"),
        "clear": (["clear", "--before", "2000-01-01"],
                  lambda out: out == "Cleared 0 completed jobs.\n"),
        "worker": (["worker", "--once"], lambda out: out == "Processed one job.\n"),
        "workers": (["workers", "--json"], lambda out: '"state": "stopped"' in out),
        "workflows": (["workflows"], lambda out: run.id in out),
        "workflow status": (["workflow", "status", run.id], lambda out: task.id in out),
        "workflow graph": (["workflow", "graph", run.id, "-o", str(tmp_path / "after.dot")],
                           lambda out: "after.dot" in out),
        "workflow explain": (["workflow", "explain", run.id],
                             lambda out: "ran: cache off" in out),
        "workflow rerun": (["workflow", "rerun", run.id],
                           lambda out: out.startswith("Workflow submitted: ")),
        "cache list": (["cache", "list"], lambda out: out == "No cache entries.\n"),
        "cache clear": (["cache", "clear", "--older-than", "1d"],
                        lambda out: out == "Cleared 0 cache entries not used for 1d.\n"),
        "limits set": (["limits", "set", "gpu", "2"],
                       lambda out: out == "Limit set: at most 2 jobs tagged 'gpu' run at once.\n"),
        "limits clear": (["limits", "clear", "gpu"], lambda out: "(it was 2)" in out),
        "demo": (["demo", "--workers", "2", "-o", str(tmp_path / "demo.svg")],
                 lambda out: "Demo pipeline finished" in out),
        "migrate": (["migrate", str(db), str(tmp_path / "copy.db")],  # a title that may wrap
                    lambda out: "copy.db" in "".join(out.split())),
    }
    # mcp serves a session on stdin/stdout: tests/mcp/test_mcp_command.py checks that its
    # --db, before or after the command, names the queue.
    assert sorted([*cases, "mcp"]) == sorted(command_names(build_parser()))
    for name, (args, check) in cases.items():
        target = tmp_path / "demo.db" if name == "demo" else db
        words = len(name.split())
        out = ok(run_cli(*args[:words], "--db", target, *args[words:], cwd=elsewhere))
        assert check(out), (name, out)
    assert list(elsewhere.iterdir()) == []  # no default queue was created or read
    # the three jobs the stats case counted, and the job of the rerun
    assert ok_json(run_cli("stats", "--json", "--db", db, cwd=elsewhere))["total"] == 4


def test_db_between_a_command_and_its_action(tmp_path):
    db = tmp_path / "jobs.db"
    workflow = gigq_flow.Workflow("nested")
    workflow.add_task(jobs.noop)
    queue = gigq_flow.JobQueue(db)
    run_id = workflow.submit(queue).id
    queue.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = ok(run_cli("workflow", "--db", db, "status", run_id, cwd=elsewhere))
    assert "nested" in out and run_id in out


# -- the database variables ----------------------------------------------------------------
@pytest.mark.usefixtures("cli_subprocesses")
def test_the_database_is_the_flag_then_gigq_flow_db_then_gigq_db_then_the_default(tmp_path):
    def submit(**env: str) -> None:
        flag = env.pop("flag", None)
        args = ["submit", "support.jobs.noop", *(["--db", flag] if flag else [])]
        submitted_id(run_cli(*args, cwd=tmp_path, env=cli_env(**env)))

    submit()
    submit(GIGQ_DB="gigq.db")
    submit(GIGQ_DB="gigq.db", GIGQ_FLOW_DB="")  # an empty variable counts as unset
    submit(GIGQ_DB="gigq.db", GIGQ_FLOW_DB="flow.db")
    submit(GIGQ_DB="gigq.db", GIGQ_FLOW_DB="flow.db", flag="flag.db")
    counts = {}
    for name in ("gigq_flow.db", "gigq.db", "flow.db", "flag.db"):
        counts[name] = ok_json(run_cli("--db", name, "stats", "--json", cwd=tmp_path))["total"]
    assert counts == {"gigq_flow.db": 1, "gigq.db": 2, "flow.db": 1, "flag.db": 1}
    # every command reads them, not only submit
    listed = ok_json(run_cli("list", "--json", cwd=tmp_path, env=cli_env(GIGQ_DB="gigq.db")))
    assert len(listed) == 2


def test_the_help_names_the_variables(tmp_path):
    out = ok(run_cli("--help", cwd=tmp_path))
    assert "$GIGQ_FLOW_DB" in out and "$GIGQ_DB" in out
    out = " ".join(ok(run_cli("worker", "--help", cwd=tmp_path)).split())
    assert "$GIGQ_WORKER_ID" in out and "$GIGQ_POLLING_INTERVAL" in out


# -- the worker's variables ------------------------------------------------------------------
@pytest.mark.parametrize("flags, env, expected", [
    ([], {}, (None, 5.0)),
    ([], {"GIGQ_WORKER_ID": "env-id", "GIGQ_POLLING_INTERVAL": "0.5"}, ("env-id", 0.5)),
    ([], {"GIGQ_POLLING_INTERVAL": "2"}, (None, 2.0)),  # GigQ's integer seconds
    ([], {"GIGQ_WORKER_ID": "", "GIGQ_POLLING_INTERVAL": ""}, (None, 5.0)),
    (["--worker-id", "flag-id", "--polling-interval", "1.5"],
     {"GIGQ_WORKER_ID": "env-id", "GIGQ_POLLING_INTERVAL": "0.5"}, ("flag-id", 1.5)),
    (["--polling-interval", "1"], {"GIGQ_POLLING_INTERVAL": "abc"}, (None, 1.0)),
])
def test_worker_flags_come_before_the_variables(monkeypatch, flags, env, expected):
    for name in ("GIGQ_WORKER_ID", "GIGQ_POLLING_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["worker", *flags])
    assert worker_options(args) == expected


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "1e999"])
def test_a_malformed_polling_interval_variable_names_itself(monkeypatch, value):
    monkeypatch.setenv("GIGQ_POLLING_INTERVAL", value)
    args = build_parser().parse_args(["worker"])
    with pytest.raises(UsageError, match=f"GIGQ_POLLING_INTERVAL='{value}'.*--polling-interval"):
        worker_options(args)


def test_the_worker_id_variable_names_the_worker_of_the_jobs(tmp_path):
    db = tmp_path / "jobs.db"
    first = submitted_id(run_cli("--db", db, "submit", "support.jobs.noop", cwd=tmp_path))
    second = submitted_id(run_cli("--db", db, "submit", "support.jobs.noop", cwd=tmp_path))
    env = cli_env(GIGQ_WORKER_ID="from-env", GIGQ_POLLING_INTERVAL="0.25")
    ok(run_cli("--db", db, "worker", "--once", cwd=tmp_path, env=env))
    ok(run_cli("--db", db, "worker", "--once", "--worker-id", "from-flag", cwd=tmp_path, env=env))
    workers = {job_id: ok_json(run_cli("--db", db, "status", job_id, "--json", cwd=tmp_path))
               ["worker_id"] for job_id in (first, second)}
    assert workers == {first: "from-env", second: "from-flag"}


def test_a_malformed_variable_is_one_usage_error_and_writes_nothing(tmp_path: Path):
    db = tmp_path / "jobs.db"
    bad = cli_env(GIGQ_POLLING_INTERVAL="abc")
    line = assert_usage_error(run_cli("--db", db, "worker", "--once", cwd=tmp_path, env=bad),
                              "GIGQ_POLLING_INTERVAL='abc'", "--polling-interval")
    assert "must be a number of seconds" in line
    assert not db.exists()
    # the flag overrides it, and commands that do not read it ignore it
    ok(run_cli("--db", db, "worker", "--once", "--polling-interval", "1", cwd=tmp_path, env=bad))
    ok(run_cli("--db", db, "stats", cwd=tmp_path, env=bad))
