"""Worker: options, ids, threads, background mode, wake-ups and signals in a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from support import jobs
from support.helpers import status_of, subprocess_env, wait_until

from gigq_flow import Job, Worker

pytestmark = pytest.mark.contract


def completed(queue, *job_ids):
    return all(status_of(queue, j) == "completed" for j in job_ids)


# -- options and ids -------------------------------------------------------------------------
@pytest.mark.parametrize("concurrency", [0, -1])
def test_concurrency_below_one_is_value_error(db_path, concurrency):
    with pytest.raises(ValueError, match="concurrency"):
        Worker(db_path, concurrency=concurrency)


def test_auto_generated_worker_ids_are_unique(db_path):
    ids = [Worker(db_path).worker_id for _ in range(50)]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == 50


def test_given_worker_id_is_recorded(queue, db_path, make_worker):
    job_id = queue.submit(Job("j", jobs.noop))
    worker = make_worker(db_path, worker_id="my-worker")
    assert worker.worker_id == "my-worker"
    assert worker.process_one()
    assert [e["worker_id"] for e in queue.get_status(job_id)["executions"]] == ["my-worker"]


def test_threads_claim_under_numbered_ids_and_run_concurrently(queue, db_path):
    key = f"barrier-{uuid.uuid4()}"
    # Each job returns only when both wait at the barrier at once: two threads must run them.
    ids = [queue.submit(Job(f"meet-{i}", jobs.meet_at_barrier, params={"key": key},
                            max_attempts=1)) for i in range(2)]
    worker = Worker(db_path, worker_id="duo", polling_interval=5, concurrency=2)
    worker.start_background()
    try:
        wait_until(lambda: all(status_of(queue, j) in ("completed", "failed") for j in ids), 20)
    finally:
        worker.stop(wait=True, timeout=10)
    statuses = [queue.get_status(j) for j in ids]
    assert [s["status"] for s in statuses] == ["completed", "completed"], [
        s["error"] for s in statuses]
    worker_ids = {s["executions"][0]["worker_id"] for s in statuses}
    assert worker_ids == {"duo-0", "duo-1"}


def test_many_jobs_over_three_threads(queue, db_path):
    ids = [queue.submit(Job("n", jobs.noop)) for _ in range(60)]
    with Worker(db_path, worker_id="trio", polling_interval=5, concurrency=3):
        wait_until(lambda: queue.stats()["completed"] == 60, 20)
    for job_id in ids:
        executions = queue.get_status(job_id)["executions"]
        assert len(executions) == 1
        assert executions[0]["worker_id"] in {"trio-0", "trio-1", "trio-2"}


# -- background mode ----------------------------------------------------------------------
def test_start_background_and_stop_wait(queue, db_path):
    worker = Worker(db_path, polling_interval=5)
    thread = worker.start_background()
    assert thread.is_alive()
    ids = [queue.submit(Job("a", jobs.add, params={"a": i, "b": 1})) for i in range(5)]
    wait_until(lambda: completed(queue, *ids))
    assert [queue.get_result(j) for j in ids] == [1, 2, 3, 4, 5]

    began = time.monotonic()
    worker.stop(wait=True, timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - began < 2  # an idle worker is woken, not left to its 5 s poll


def test_stop_lets_the_running_job_finish(queue, db_path):
    key = f"gate-{uuid.uuid4()}"
    job_id = queue.submit(Job("slow", jobs.block_until_released, params={"key": key}))
    later = queue.submit(Job("later", jobs.noop, priority=-1))
    worker = Worker(db_path, polling_interval=5)
    thread = worker.start_background()
    try:
        assert jobs.event(f"{key}:started").wait(10)
        worker.stop()  # no wait: the job is still blocked
        assert thread.is_alive()
        assert status_of(queue, job_id) == "running"
    finally:
        jobs.event(f"{key}:release").set()
    thread.join(10)
    assert not thread.is_alive()
    assert queue.get_result(job_id) == "released"
    assert status_of(queue, later) == "pending"  # nothing claimed after stop()


def worker_threads():
    """Live threads, less the process-wide wake-up listener (postgres) that outlives workers."""
    return {t for t in threading.enumerate() if not t.name.startswith("gigq-flow-listen-")}


def test_context_manager_runs_jobs_and_stops(queue, db_path):
    threads_before = worker_threads()
    with Worker(db_path, polling_interval=5) as worker:
        assert isinstance(worker, Worker)
        job_id = queue.submit(Job("a", jobs.add, params={"a": 2, "b": 2}))
        wait_until(lambda: completed(queue, job_id))
        assert worker_threads() - threads_before  # it ran in background threads
    assert worker_threads() == threads_before
    assert queue.get_result(job_id) == 4


def test_start_in_a_non_main_thread_runs_until_stop(queue, db_path):
    worker = Worker(db_path, polling_interval=5)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.start()  # no signal handlers off the main thread, and no error
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    job_id = queue.submit(Job("a", jobs.add, params={"a": 1, "b": 2}))
    wait_until(lambda: completed(queue, job_id))
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert errors == []
    assert queue.get_result(job_id) == 3


def test_running_loop_retries_after_retry_delay_not_polling_interval(queue, db_path, tmp_path):
    counter = tmp_path / "counter"
    job_id = queue.submit(Job("flaky", jobs.fail_n_times, retry_delay=1, max_attempts=2,
                              params={"counter_path": str(counter), "n": 1}))
    with Worker(db_path, polling_interval=5):
        wait_until(lambda: queue.get_status(job_id)["attempts"] == 1)
        failed_at = time.monotonic()
        wait_until(lambda: completed(queue, job_id), timeout=10)
        waited = time.monotonic() - failed_at
    assert 0.8 <= waited < 3.0
    executions = queue.get_status(job_id)["executions"]
    assert [e["status"] for e in executions] == ["failed", "completed"]


# -- wake-ups -------------------------------------------------------------------------------
def test_idle_worker_picks_up_new_job_from_same_process(queue, db_path, tmp_path):
    log = tmp_path / "times.log"
    with Worker(db_path, polling_interval=5):
        warm = queue.submit(Job("warm", jobs.record_time, params={"log_path": str(log)}))
        wait_until(lambda: completed(queue, warm))  # the worker is now idle
        submitted = time.time()
        job_id = queue.submit(Job("t", jobs.record_time, params={"log_path": str(log)}))
        wait_until(lambda: completed(queue, job_id), timeout=10)
    latency = queue.get_result(job_id) - submitted
    assert 0 <= latency < 1.0


def test_idle_worker_picks_up_new_job_from_another_process(queue, db_path, tmp_path):
    log = tmp_path / "times.log"
    script = tmp_path / "submit.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from support import jobs
        from gigq_flow import Job, JobQueue
        queue = JobQueue(sys.argv[1])
        job = Job("t", jobs.record_time, params={"log_path": sys.argv[2]})
        submitted = time.time()
        queue.submit(job)
        print(job.id, repr(submitted))
    """))
    with Worker(db_path, polling_interval=5):
        warm = queue.submit(Job("warm", jobs.record_time, params={"log_path": str(log)}))
        wait_until(lambda: completed(queue, warm))
        out = subprocess.run([sys.executable, str(script), str(db_path), str(log)],
                             env=subprocess_env(), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        job_id, submitted = out.stdout.split()
        wait_until(lambda: completed(queue, job_id), timeout=10)
    latency = queue.get_result(job_id) - float(submitted)
    assert 0 <= latency < 1.0


# -- start() in a subprocess, stopped by signals ----------------------------------------------
WORKER_SCRIPT = """
import sys
from gigq_flow import Worker

class ReportingWorker(Worker):
    def stop(self, *args, **kwargs):
        print("stop requested", flush=True)
        super().stop(*args, **kwargs)

worker = ReportingWorker(sys.argv[1], worker_id="sig-worker", polling_interval=5,
                         concurrency=int(sys.argv[2]))
print("starting", flush=True)
worker.start()
print("exited cleanly", flush=True)
"""


def spawn_worker(tmp_path, db_path, env, concurrency=1):
    script = tmp_path / "worker_main.py"
    script.write_text(WORKER_SCRIPT)
    out = open(tmp_path / "worker.out", "w")
    err = open(tmp_path / "worker.err", "w")
    proc = subprocess.Popen([sys.executable, str(script), str(db_path), str(concurrency)],
                            env=env, stdout=out, stderr=err)
    out.close()
    err.close()
    return proc


def output(tmp_path):
    return (tmp_path / "worker.out").read_text(), (tmp_path / "worker.err").read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_start_stops_gracefully_on_signal(queue, db_path, tmp_path, signum):
    started, release = tmp_path / "started", tmp_path / "release"
    job_id = queue.submit(Job("slow", jobs.hold, priority=10, params={
        "started": str(started), "release": str(release)}))
    later = queue.submit(Job("later", jobs.noop))

    proc = spawn_worker(tmp_path, db_path, subprocess_env())
    try:
        wait_until(started.exists, timeout=30)
        assert status_of(queue, job_id) == "running"
        proc.send_signal(signum)
        wait_until(lambda: "stop requested" in output(tmp_path)[0], timeout=10)
        assert proc.poll() is None  # still finishing the job
        release.touch()
        rc = proc.wait(timeout=30)
    finally:
        release.touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout, stderr = output(tmp_path)
    assert rc == 0, stderr
    assert "exited cleanly" in stdout
    assert "Traceback" not in stderr

    status = queue.get_status(job_id)
    assert (status["status"], status["result"]) == ("completed", {"pid": proc.pid})
    assert [(e["worker_id"], e["status"]) for e in status["executions"]] == [
        ("sig-worker", "completed")]
    assert status_of(queue, later) == "pending"  # nothing claimed after the signal


@pytest.mark.parametrize("concurrency", [1, 2])
def test_idle_start_exits_promptly_on_sigterm(queue, db_path, tmp_path, concurrency):
    proc = spawn_worker(tmp_path, db_path, subprocess_env(), concurrency)
    try:
        job_id = queue.submit(Job("warm", jobs.noop))
        wait_until(lambda: status_of(queue, job_id) == "completed", timeout=30)  # it is running
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, output(tmp_path)[1]
    assert "exited cleanly" in output(tmp_path)[0]
    assert elapsed < 2.5  # woken at once, not after the 5 s polling interval


@pytest.mark.sqlite_only(reason="the import race is in the worker, not the store")
def test_threads_that_first_meet_a_slow_importing_module_both_run_it(queue, db_path, tmp_path,
                                                                     monkeypatch):
    """A thread must wait for another thread's import of a job's module to finish, not
    take the half-initialized module from sys.modules."""
    from gigq_flow.store import NewJob

    module = f"slow_import_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""
        import time
        time.sleep(0.5)  # both worker threads ask for the module while this runs

        def answer():
            return 42
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    jobs = [NewJob(id=str(uuid.uuid4()), name=f"answer-{i}", function_module=module,
                   function_name="answer", params="{}", priority=0, dependencies=(),
                   max_attempts=1, timeout=60, description="", created_at=f"2024-01-01T00:00:0{i}",
                   pass_parent_results=None, retry_delay=0, serializer="json")
            for i in range(2)]
    queue.store.submit(jobs)
    with Worker(db_path, concurrency=2, polling_interval=0.1):
        wait_until(lambda: all(status_of(queue, job.id) in ("completed", "failed")
                               for job in jobs), 20)
    assert [queue.get_status(job.id)["error"] for job in jobs] == [None, None]
    assert [queue.get_result(job.id) for job in jobs] == [42, 42]
    monkeypatch.delitem(sys.modules, module, raising=False)
