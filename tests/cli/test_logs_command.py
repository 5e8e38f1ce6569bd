"""``gigq-flow logs``: what a job's attempt printed and logged, then its traceback, from
real workers (``worker --once`` commands, a worker thread of this process for a step
held open); ``--follow`` as a subprocess that streams a running step; ``--json``; bad ids
and attempts are one line and exit status 2."""

from __future__ import annotations

import json
import select
import subprocess
import time
from pathlib import Path

import pytest
from support import jobs
from support.cli import assert_usage_error, cli, ok, ok_json, start_cli, submitted_id

import gigq_flow

FOLLOW_TIMEOUT = 30


def run_once(db: Path) -> None:
    assert ok(cli(db, "worker", "--once")) == "Processed one job.\n"


def read_line(process: subprocess.Popen[str], timeout: float = FOLLOW_TIMEOUT) -> str:
    """The next line the command prints; fails if none comes within ``timeout``."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"the command printed no line in {timeout} s"
    return process.stdout.readline()


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=FOLLOW_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the command did not end: {out!r} {err!r}") from None
    return process.returncode, out, err


@pytest.mark.usefixtures("cli_subprocesses")
def test_a_jobs_prints_logs_and_traceback_per_attempt(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.print_then_fail", "-p", "label=p",
                              "--max-attempts", "2"))
    assert ok(cli(db, "logs", job_id)) == ""  # not started: nothing, and no error
    run_once(db)
    run_once(db)
    queue = gigq_flow.JobQueue(db)
    try:
        expected = [queue.get_logs(job_id, attempt) for attempt in (1, 2)]
    finally:
        queue.close()
    latest = ok(cli(db, "logs", job_id))
    assert latest == expected[1]  # as stored, nothing added
    assert latest.startswith("p is about to fail\nTraceback (most recent call last):\n")
    assert "in print_then_fail" in latest
    assert latest.endswith("ValueError: deep problem in p\n")
    assert ok(cli(db, "logs", job_id, "--attempt", "1")) == expected[0]


def test_json_gives_the_attempt_its_status_logs_and_traceback(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.print_then_fail", "-p", "label=j",
                              "--max-attempts", "1"))
    pending = ok_json(cli(db, "logs", job_id, "--json"))
    assert pending == {"job_id": job_id, "attempt": None, "status": "pending", "logs": "",
                       "traceback": None}
    run_once(db)
    record = ok_json(cli(db, "logs", "--json", job_id, "--attempt", "1"))
    assert set(record) == {"job_id", "attempt", "status", "logs", "traceback"}
    assert (record["job_id"], record["attempt"], record["status"]) == (job_id, 1, "failed")
    assert record["traceback"].startswith("Traceback (most recent call last):\n")
    assert record["logs"] == "j is about to fail\n" + record["traceback"]
    assert ok_json(cli(db, "logs", job_id, "--json")) == record  # the latest is attempt 1

    talker = submitted_id(cli(db, "submit", "support.jobs.talk", "-p", "label=t",
                              "-p", "lines=2"))
    run_once(db)
    talked = ok_json(cli(db, "logs", talker, "--json"))
    assert (talked["attempt"], talked["status"], talked["traceback"]) == (1, "completed", None)
    assert talked["logs"].startswith("t line 0\nt line 1\nt to stderr\n"
                                     "WARNING steps.t: careful with t\n")


def test_bad_ids_and_attempts_are_one_line_and_status_2(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.talk", "-p", "label=b"))
    assert_usage_error(cli(db, "logs", job_id, "--attempt", "1"),
                       f"--attempt 1: job {job_id} has not started yet", "leave --attempt out")
    run_once(db)
    assert_usage_error(cli(db, "logs", job_id, "--attempt", "2"),
                       f"job {job_id} has 1 attempt(s); pass --attempt 1 to 1")
    assert_usage_error(cli(db, "logs", job_id, "--attempt", "3", "--follow"), "--attempt 1 to 1")
    for bad in ("0", "-1", "two"):
        assert_usage_error(cli(db, "logs", job_id, "--attempt", bad), "--attempt")
    assert_usage_error(cli(db, "logs", "no-such-job"), "Job no-such-job not found")
    assert_usage_error(cli(db, "logs", "no-such-job", "--follow"), "not found")
    assert_usage_error(cli(db, "logs", job_id, "--follow", "--json"),
                       "--follow and --json cannot be combined")
    assert_usage_error(cli(db, "logs"), "job_id")
    missing = db.parent / "missing.db"
    assert_usage_error(cli(missing, "logs", job_id), "no queue at")
    assert not missing.exists()


def test_follow_streams_a_running_step_until_it_ends(db, make_worker):
    key = f"follow-{time.monotonic_ns()}"
    queue = gigq_flow.JobQueue(db)
    job_id = queue.submit(gigq_flow.Job("held", jobs.print_until_released,
                                        params={"key": key}))
    worker = make_worker(db, polling_interval=0.1)
    worker.start_background()
    try:
        assert jobs.event(f"{key}:started").wait(20)
        follower = start_cli("logs", job_id, "--follow", "--db", db, cwd=db.parent)
        assert read_line(follower) == f"{key} started\n"  # printed while the step waits
        assert follower.poll() is None  # still following: the step has not ended
        assert queue.get_status(job_id)["status"] == "running"
        jobs.event(f"{key}:release").set()
        status, rest, err = finish(follower)
        assert (status, rest, err) == (0, f"{key} released\n", "")
        assert queue.get_logs(job_id) == f"{key} started\n{key} released\n"
    finally:
        jobs.event(f"{key}:release").set()
        queue.close()


def test_follow_waits_for_the_first_attempt_and_exits_0_when_it_completes(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.talk", "-p", "label=w"))
    follower = start_cli("--db", db, "logs", job_id, "--follow", cwd=db.parent)
    time.sleep(0.7)  # at least one poll while the job waits for a worker
    assert follower.poll() is None
    run_once(db)
    status, out, err = finish(follower)
    assert (status, err) == (0, "")
    assert out == ok(cli(db, "logs", job_id)) and out.startswith("w line 0\n")


def test_follow_exits_1_when_the_attempt_failed(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.print_then_fail", "-p", "label=x",
                              "--max-attempts", "2"))
    run_once(db)  # attempt 1 failed; the job waits for its retry
    result = cli(db, "logs", job_id, "--follow")
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout == ok(cli(db, "logs", job_id, "--attempt", "1"))
    assert result.stdout.endswith("ValueError: deep problem in x\n")
    run_once(db)
    assert cli(db, "logs", job_id, "--follow", "--attempt", "1").returncode == 1
    assert ok(cli(db, "logs", job_id)).startswith("x is about to fail\n")  # no --follow: 0


def test_follow_of_a_job_cancelled_before_it_ran_exits_1_with_nothing(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.talk", "-p", "label=c"))
    follower = start_cli("--db", db, "logs", job_id, "--follow", cwd=db.parent)
    time.sleep(0.3)
    assert ok(cli(db, "cancel", job_id)) == f"Job {job_id} cancelled.\n"
    assert finish(follower) == (1, "", "")


@pytest.mark.parametrize("flags", [(), ("--json",)])
def test_logs_of_a_step_that_printed_nothing_is_empty(db, flags):
    job_id = submitted_id(cli(db, "submit", "support.jobs.noop"))
    run_once(db)
    out = ok(cli(db, "logs", job_id, *flags))
    if flags:
        assert json.loads(out)["logs"] == "" and json.loads(out)["status"] == "completed"
    else:
        assert out == ""


def test_status_show_executions_gives_each_failed_attempt_its_traceback(db):
    job_id = submitted_id(cli(db, "submit", "support.jobs.print_then_fail", "-p", "label=s",
                              "--max-attempts", "2"))
    run_once(db)
    run_once(db)
    out = ok(cli(db, "status", job_id, "--show-executions")).splitlines()
    rows = [i for i, line in enumerate(out) if line.startswith("|") and "failed" in line]
    assert len(rows) == 2
    queue = gigq_flow.JobQueue(db)
    try:
        tracebacks = [e["traceback"] for e in queue.get_status(job_id)["executions"]]
    finally:
        queue.close()
    for row, traceback in zip(rows, tracebacks, strict=True):
        shown = out[row + 1:row + 1 + len(traceback.splitlines())]
        assert shown == ["    " + line for line in traceback.splitlines()]
    table = [line for line in out if line.startswith(("+", "|"))]
    assert len(table) == 6 and len({len(line) for line in table}) == 1  # still one table
