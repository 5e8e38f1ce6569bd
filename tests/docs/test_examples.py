"""The scripts in examples/ run as a user runs them, in subprocesses, each on a fresh queue
file in a temporary directory, and do what their docstrings say."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import jobs
from support.helpers import REPO_ROOT, subprocess_env
from support.processes import alive, descendants

from gigq_flow import Job, JobQueue

EXAMPLES = REPO_ROOT / "examples"
RUN_TIMEOUT = 120
DEADLINE = 30.0
"""Longest a test waits for the service to reach a state (a deadline, not a sleep)."""


def run_example(name: str, *args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


def workflow_counts(db: Path) -> list[dict[str, int]]:
    queue = JobQueue(db)
    try:
        return [workflow["counts"] for workflow in queue.list_workflows()]
    finally:
        queue.close()


def test_every_example_has_a_test():
    tested = {"quickstart.py", "data_pipeline.py", "fan_out_fan_in.py",
              "hyperparameter_sweep.py", "worker_service.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_quickstart(tmp_path):
    out = run_example("quickstart.py", str(tmp_path / "q.db"), cwd=tmp_path, env=subprocess_env())
    assert "total of squares: 30" in out
    assert "'completed': 5" in out


def test_data_pipeline_passes_results_between_steps(tmp_path):
    report = tmp_path / "report.json"
    out = run_example("data_pipeline.py", "--db", str(tmp_path / "p.db"), "--out", str(report),
                      "--days", "3", cwd=tmp_path, env=subprocess_env())
    assert "5 steps completed" in out
    assert "rows extracted: 216" in out  # 3 days x 24 hours x 3 sensors
    written = json.loads(report.read_text())
    summary = written["summary"]
    assert f"report: {json.dumps(summary)}" in out  # the last step's result is the summary
    assert summary["sensors"] == 3 and summary["days"] == 3
    assert summary["outliers"] == len(written["outliers"])
    assert all(row["value"] == 400.0 for row in written["outliers"])  # the injected glitches
    assert workflow_counts(tmp_path / "p.db") == [{**_zero(), "completed": 5}]


def test_fan_out_fan_in_over_worker_processes(tmp_path):
    out = run_example("fan_out_fan_in.py", "--db", str(tmp_path / "f.db"), "--limit", "100000",
                      "--chunks", "6", "--workers", "2", cwd=tmp_path, env=subprocess_env())
    assert "primes below 100000: 9592 (6 chunks on" in out  # pi(10^5) = 9592
    assert "worker exit codes: [0, 0]" in out
    assert workflow_counts(tmp_path / "f.db") == [{**_zero(), "completed": 8}]


def test_hyperparameter_sweep_picks_the_best_trial(tmp_path):
    db = tmp_path / "s.db"
    out = run_example("hyperparameter_sweep.py", "--db", str(db), "--workers", "3",
                      cwd=tmp_path, env=subprocess_env())
    assert "16 trials, 4 diverged" in out
    queue = JobQueue(db)
    (workflow,) = queue.list_workflows()
    results = queue.get_workflow(workflow["id"]).results()
    queue.close()
    losses = [trial["val_loss"] for trial in results["train"] if not trial["diverged"]]
    best = results["pick_best"]["best"]
    assert best["val_loss"] == min(losses)
    assert abs(best["w"] - 3) < 0.1 and abs(best["b"] + 2) < 0.1  # the line it was made from
    assert f"best: {json.dumps(best['params'])}" in out


# -- the worker service -------------------------------------------------------------------
class ServiceProcess:
    """examples/worker_service.py running on ``db``, its log in ``log``."""

    def __init__(self, db: Path, log: Path, env: dict[str, str], *args: str) -> None:
        self.db, self.log = db, log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(EXAMPLES / "worker_service.py"), "--db", str(db),
                 "--check-interval", "0.1", "--polling-interval", "0.5", *args],
                cwd=db.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.queue = JobQueue(db)

    def alive_workers(self) -> dict[str, int]:
        """Worker id -> pid of the workers the queue sees alive."""
        return {w["id"]: w["pid"] for w in self.queue.list_workers() if w["state"] == "alive"
                and alive(w["pid"])}

    def wait_for(self, condition, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the service exited ({self.process.returncode}) while waiting for "
                            f"{what}:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {DEADLINE} s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self, signum: int | None) -> int:
        """Send ``signum`` (None: one was sent already), wait for the exit code and check
        that every process the service started has gone."""
        spawned = descendants(self.process.pid)
        if signum is not None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in spawned) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = [pid for pid in spawned if alive(pid)]
        assert not orphans, f"processes left behind: {orphans}"
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            for pid in descendants(self.process.pid):
                os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()
        self.queue.close()


def test_worker_service_restarts_a_killed_worker_and_stops_cleanly(tmp_path):
    service = ServiceProcess(tmp_path / "svc.db", tmp_path / "service.log", subprocess_env(),
                             "--workers", "2", "--lease-timeout", "2", "--grace-period", "10")
    try:
        service.wait_for(lambda: set(service.alive_workers()) == {"service-0.0", "service-1.0"},
                         "two registered workers")
        release = tmp_path / "release"
        blocked = [service.queue.submit(Job(f"blocked-{i}", jobs.hold,
                                            {"started": str(tmp_path / f"started-{i}"),
                                             "release": str(release)}))
                   for i in range(2)]
        service.wait_for(lambda: service.queue.stats()["running"] == 2, "both workers busy")
        (victim_job,) = [job["id"] for job in service.queue.list_jobs(status="running")
                         if job["worker_id"] == "service-1.0"]
        victim = service.alive_workers()["service-1.0"]
        os.kill(victim, signal.SIGKILL)  # a crash in the middle of a job

        service.wait_for(lambda: "service-1.1" in service.alive_workers(), "a restarted worker")
        assert service.alive_workers()["service-1.1"] != victim
        more = [service.queue.submit(Job(f"sleep-{i}", jobs.sleep_for, {"seconds": 0.1}))
                for i in range(10)]
        release.write_text("go")
        service.wait_for(lambda: service.queue.stats()["completed"] == len(blocked) + len(more),
                         "every job completed (the killed one's after its lease expired)")
        states = {w["id"]: w["state"] for w in service.queue.list_workers()}
        assert states["service-1.0"] in ("alive", "dead")  # no clean stop was recorded
        attempts = {job_id: service.queue.get_status(job_id)["attempts"]
                    for job_id in blocked + more}
        assert attempts.pop(victim_job) == 2  # reclaimed from the dead worker, run again
        assert set(attempts.values()) == {1}

        assert service.stop(signal.SIGTERM) == 0
        states = {w["id"]: w["state"] for w in service.queue.list_workers()}
        assert states["service-0.0"] == states["service-1.1"] == "stopped"
        log = service.log.read_text()
        assert "died with exit code -9" in log and "started worker service-1.1" in log
        assert "Traceback" not in log
    finally:
        service.close()


def test_worker_service_lets_running_jobs_finish_on_sigint(tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    service = ServiceProcess(tmp_path / "svc.db", tmp_path / "service.log", subprocess_env(),
                             "--workers", "1", "--grace-period", "20")
    try:
        job = service.queue.submit(Job("slow", jobs.hold,
                                       {"started": str(started), "release": str(release)}))
        service.wait_for(started.exists, "the job to start")
        service.process.send_signal(signal.SIGINT)  # Ctrl-C
        service.wait_for(lambda: "stopping the workers gracefully" in service.log.read_text(),
                         "the service to start stopping")
        assert service.process.poll() is None  # still waiting for the running job
        release.write_text("go")
        assert service.stop(None) == 0
        assert service.queue.get_status(job)["status"] == "completed"
    finally:
        service.close()


def _zero() -> dict[str, int]:
    return {status: 0 for status in ("pending", "running", "completed", "failed", "cancelled",
                                     "timeout", "upstream_failed")}

