"""GigQ's own programs run on gigq_flow with only ``gigq`` changed to ``gigq_flow`` (imports)
and ``gigq-flow`` (commands): the copies in ``tests/support/gigq_programs`` (where each
comes from is in that package's docstring), each run in a scratch directory as its guide
runs it: Python scripts with ``python``, shell recipes with ``bash``.

Jobs that must be seen running at the same time are :func:`support.jobs.hold`: each
appends its worker process's pid to a file and waits for a release file, so three pids
in the file prove three worker processes, each running one job.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import jobs
from support.cli import shell_env, start_cli, stop
from support.helpers import TESTS_DIR, lines, subprocess_env, wait_until
from support.processes import alive

import gigq_flow

PROGRAMS = TESTS_DIR / "support" / "gigq_programs"
RUN_TIMEOUT = 60
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def copy_programs(directory: Path, *names: str) -> None:
    for name in names:
        shutil.copy(PROGRAMS / name, directory / name)


def submit(db: Path, *job_list: gigq_flow.Job) -> list[str]:
    queue = gigq_flow.JobQueue(db)
    try:
        return [queue.submit(job) for job in job_list]
    finally:
        queue.close()


def records(db: Path, ids: list[str]) -> list[dict]:
    queue = gigq_flow.JobQueue(db)
    try:
        return [queue.get_status(job_id) for job_id in ids]
    finally:
        queue.close()


def all_completed(db: Path, ids: list[str]) -> bool:
    return all(record["status"] == "completed" for record in records(db, ids))


def held_jobs(directory: Path, count: int) -> tuple[list[gigq_flow.Job], Path, Path]:
    """``count`` jobs that each record their process and wait for one release file."""
    started, release = directory / "started", directory / "release"
    params = {"started": str(started), "release": str(release)}
    return ([gigq_flow.Job(f"held-{i}", jobs.hold, params=params) for i in range(count)],
            started, release)


def run_held_jobs_on_three_workers(db: Path, directory: Path, ids: list[str]) -> set[int]:
    """Wait until three worker processes each run one held job, release them, wait for
    every job to complete; returns the workers' pids."""
    started = directory / "started"
    pids = wait_until(lambda: len(set(lines(started))) == 3 and set(lines(started)),
                      timeout=RUN_TIMEOUT, what="three workers each running a job")
    assert {record["worker_id"] for record in records(db, ids)} == \
        {"worker-1", "worker-2", "worker-3"}
    (directory / "release").touch()
    wait_until(lambda: all_completed(db, ids), timeout=RUN_TIMEOUT, what="every job completed")
    return {int(pid) for pid in pids}


# -- workers guide: "Starting a Worker", a worker in a daemon thread ---------------------
DAEMON_THREAD_MAIN = """\
import sys
import time

import worker_thread  # GigQ's snippet: a worker in a daemon thread on jobs.db
from gigq_flow import JobQueue

# "Continue with other tasks...": wait for the jobs the test submitted, then exit
queue = JobQueue("jobs.db")
deadline = time.monotonic() + 30
while not all(queue.get_status(i)["status"] == "completed" for i in sys.argv[1:]):
    if time.monotonic() > deadline:
        sys.exit("the jobs did not complete")
    time.sleep(0.05)
print("results", [queue.get_result(i) for i in sys.argv[1:]])
print("worker thread alive at exit:", worker_thread.worker_thread.is_alive())
"""


def test_a_worker_in_a_daemon_thread_runs_jobs_and_ends_with_the_program(tmp_path):
    copy_programs(tmp_path, "worker_thread.py")
    (tmp_path / "main.py").write_text(DAEMON_THREAD_MAIN)
    ids = submit(tmp_path / "jobs.db", *(gigq_flow.Job(f"add-{i}", jobs.add,
                                                       params={"a": i, "b": 10})
                                         for i in range(3)))
    done = subprocess.run([sys.executable, "main.py", *ids], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert "results [10, 11, 12]" in done.stdout
    assert "worker thread alive at exit: True" in done.stdout  # a daemon: it ended with main


# -- workers guide: "Running Multiple Workers", worker_script.py three times ---------------
WAIT_FOR_EACH = '\nfor pid in $(jobs -p); do wait "$pid"; echo "exit $?"; done\n'
"""Appended to the recipe so the test sees each worker's exit status."""


def test_three_worker_scripts_share_the_queue_and_stop_on_sigterm(tmp_path):
    copy_programs(tmp_path, "worker_script.py", "run_three_workers.sh")
    held, _, _ = held_jobs(tmp_path, 3)
    ids = submit(tmp_path / "jobs.db", *held)
    script = (tmp_path / "run_three_workers.sh").read_text() + WAIT_FOR_EACH
    shell = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=shell_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids = run_held_jobs_on_three_workers(tmp_path / "jobs.db", tmp_path, ids)
        for pid in pids:
            subprocess.run(["kill", "-TERM", str(pid)], check=True)
        out, err = shell.communicate(timeout=RUN_TIMEOUT)
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.communicate()
    assert shell.returncode == 0, (out, err)
    assert out.split("\n").count("exit 0") == 3, (out, err)
    assert "Traceback" not in err, err


# -- workers guide: "Example: Background Processing Service" --------------------------------
def test_the_background_service_runs_three_workers_and_exits_0_on_sigterm(tmp_path):
    copy_programs(tmp_path, "background_service.py")
    held, _, _ = held_jobs(tmp_path, 3)
    ids = submit(tmp_path / "jobs.db", *held)
    service = subprocess.Popen(
        [sys.executable, "background_service.py", "--db", "jobs.db", "--workers", "3"],
        cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        pids = run_held_jobs_on_three_workers(tmp_path / "jobs.db", tmp_path, ids)
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=RUN_TIMEOUT)
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    assert service.returncode == 0, err
    assert "Traceback" not in err, err
    for n in (1, 2, 3):
        assert f"Started worker process worker-{n}" in err
        assert f"Terminating worker worker-{n}" in err
        assert f"Worker worker-{n} stopped" in err  # each worker process shut down cleanly
    assert not any(alive(pid) for pid in pids)


# -- CLI guide and reference: the shell recipe ---------------------------------------------
MY_MODULE = """\
def process_data(filename):
    return {"processed": True, "record_count": 1250, "errors": 0}
"""
FAILING_MODULE = """\
def process_data(filename):
    raise OSError(f"cannot read {filename}")
"""


@pytest.mark.parametrize("recipe, db", [("shell_recipe.sh", "gigq_flow.db"),
                                        ("shell_recipe_db.sh", "jobs.db")])
def test_the_shell_recipe_reads_the_job_id_and_status(tmp_path, recipe, db):
    copy_programs(tmp_path, recipe)
    (tmp_path / "my_module.py").write_text(MY_MODULE)
    gigq_flow.JobQueue(tmp_path / db).close()
    worker = start_cli("--db", db, "worker", "--polling-interval", "0.1", cwd=tmp_path)
    try:
        done = subprocess.run(["bash", recipe], cwd=tmp_path, env=shell_env(tmp_path),
                              capture_output=True, text=True, timeout=RUN_TIMEOUT)
    finally:
        status, worker_out, worker_err = stop(worker)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert status == 0, worker_err
    assert re.match(r"Starting worker worker-\w+\.\.\.\n$", worker_out), worker_out
    out = done.stdout.splitlines()
    job_id = re.fullmatch(f"Submitted job: ({UUID})", out[0]).group(1)
    assert out[1:out.index("Job completed successfully!")][-1] == "Job status: completed"
    result = out[out.index("Job completed successfully!") + 1:]
    assert result[:2] == [f"Job: Process Data ({job_id})", "Status: completed"]
    assert result[result.index("Result:"):] == [
        "Result:", "  processed: True", "  record_count: 1250", "  errors: 0"]
    assert (tmp_path / db).exists()


def test_the_shell_recipe_stops_on_a_failed_job(tmp_path):
    copy_programs(tmp_path, "shell_recipe_db.sh")
    (tmp_path / "my_module.py").write_text(FAILING_MODULE)
    gigq_flow.JobQueue(tmp_path / "jobs.db").close()
    worker = start_cli("--db", "jobs.db", "worker", "--polling-interval", "0.1", cwd=tmp_path)
    try:
        done = subprocess.run(["bash", "shell_recipe_db.sh"], cwd=tmp_path,
                              env=shell_env(tmp_path), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)
    finally:
        stop(worker)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout.splitlines()[-2:] == ["Job status: failed", "Job failed!"]


# -- scheduling guide: a worker started as it writes, and its crontab line -------------------
def test_the_scheduling_guides_worker_and_crontab_line(tmp_path):
    copy_programs(tmp_path, "tasks.py")
    gigq_flow.JobQueue(tmp_path / "jobs.db").close()
    worker = start_cli("worker", "--db", "jobs.db", cwd=tmp_path)  # "gigq worker --db jobs.db"
    try:
        crontab = (f'gigq-flow submit tasks.generate_report --name "Hourly report" '
                   f'--param "format=pdf" --db {tmp_path}/jobs.db')
        submitted = subprocess.run(["sh", "-c", crontab], cwd=tmp_path, env=shell_env(tmp_path),
                                   capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip().removeprefix("Job submitted: ")
        wait_until(lambda: all_completed(tmp_path / "jobs.db", [job_id]), timeout=RUN_TIMEOUT,
                   what="the report job completed")
    finally:
        status, _, err = stop(worker)
    assert status == 0, err
    (record,) = records(tmp_path / "jobs.db", [job_id])
    assert (record["name"], record["result"]) == \
        ("Hourly report", {"status": "done", "format": "pdf"})
    assert not (tmp_path / "gigq_flow.db").exists()
