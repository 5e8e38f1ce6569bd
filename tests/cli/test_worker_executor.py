"""``gigq-flow worker --executor``: steps on child processes of the command's threads,
stopped with the command; a bad executor is a usage error."""

from __future__ import annotations

import time

from support import jobs
from support.cli import assert_usage_error, cli, ok, run_cli, start_cli, stop
from support.helpers import alive, lines, wait_until

import gigq_flow
from gigq_flow import Job


def test_sigterm_ends_the_commands_step_processes_and_returns_the_running_job(db, tmp_path):
    queue = gigq_flow.JobQueue(db)
    quick = [queue.submit(Job(f"whoami {i}", jobs.whoami, params={"value": i}, priority=1))
             for i in range(3)]
    pid_file = tmp_path / "pids"
    hanging = queue.submit(Job("hangs", jobs.hang, params={"pid_file": str(pid_file)},
                               max_attempts=1))
    worker = start_cli("--db", db, "worker", "--executor", "processes", "--concurrency", "2",
                       "--polling-interval", "0.2", "--grace-period", "0.5", cwd=db.parent)
    try:
        wait_until(lambda: all(queue.get_status(job_id)["status"] == "completed"
                               for job_id in quick), timeout=60, what="the quick jobs done")
        step_pid = int(wait_until(lambda: lines(pid_file), timeout=30)[0])
        assert queue.get_status(hanging)["status"] == "running"
        stopped_at = time.monotonic()
        status, _, err = stop(worker)  # one SIGTERM
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert status == 0, err
    assert "Traceback" not in err
    assert time.monotonic() - stopped_at < 10
    pids = {queue.get_result(job_id)["pid"] for job_id in quick}
    assert worker.pid not in pids and len(pids) <= 2  # one child per thread, reused
    assert step_pid != worker.pid
    assert not alive(step_pid) and not any(alive(pid) for pid in pids)
    returned = queue.get_status(hanging)
    assert (returned["status"], returned["attempts"]) == ("pending", 0)  # back to the queue
    # Its killed process is not a failed attempt (with max_attempts=1 it would end the job).
    assert [(e["status"], e["error"]) for e in returned["executions"]] == [
        ("interrupted", "worker shut down before the job finished; returned to the queue")]


def test_an_unknown_executor_is_a_usage_error_naming_the_choices(db):
    result = cli(db, "worker", "--executor", "bogus")
    assert_usage_error(result, "--executor", "'bogus'", "threads", "processes")
    assert not db.exists()  # refused before the queue is opened


def test_worker_help_lists_the_executor(tmp_path):
    out = ok(run_cli("worker", "--help", cwd=tmp_path))
    assert "--executor {threads,processes}" in out
    assert "child process" in out
