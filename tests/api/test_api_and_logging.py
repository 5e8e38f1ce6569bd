"""Public surface: GigQ's names, close_connections(), setup_logging(), quiet import."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid

from support import jobs
from support.helpers import drain, subprocess_env

import gigq_flow
from gigq_flow import Job, JobQueue, Worker, close_connections, setup_logging


def test_gigq_names_are_exported():
    for name in ("Job", "JobQueue", "JobStatus", "Worker", "task", "close_connections",
                 "setup_logging"):
        assert name in gigq_flow.__all__
        assert callable(getattr(gigq_flow, name))
    assert gigq_flow.__all__ == sorted(gigq_flow.__all__)



def test_a_job_id_is_the_text_of_a_time_ordered_uuid():
    made = [Job("step", jobs.identity).id for _ in range(5000)]
    assert len(set(made)) == 5000
    assert made == sorted(made)  # in the order made, within a millisecond too
    now_ms = time.time_ns() // 1_000_000
    for job_id in made:
        parsed = uuid.UUID(job_id)
        assert str(parsed) == job_id
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert abs((parsed.int >> 80) - now_ms) < 60_000  # its first 48 bits: Unix ms


def test_close_connections_closes_this_threads_connection(db_path):
    queue = JobQueue(db_path)
    queue.submit(Job("j", jobs.noop))
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists()  # an open WAL connection
    close_connections()
    assert not wal.exists()  # SQLite removes the WAL when its last connection closes
    # The queue reconnects on next use.
    assert queue.stats()["pending"] == 1
    drain(Worker(db_path))
    assert queue.stats()["completed"] == 1


def test_close_connections_only_touches_the_calling_thread(db_path):
    queue = JobQueue(db_path)
    queue.submit(Job("j", jobs.noop))
    other_done = threading.Event()
    results = []

    def other() -> None:
        results.append(queue.stats()["total"])
        close_connections()
        other_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert other_done.is_set() and results == [1]
    assert queue.stats()["total"] == 1  # this thread's connection still works


def run_code(code: str, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_import_configures_no_logging():
    out = run_code("""
        import logging
        import gigq_flow
        logger = logging.getLogger("gigq_flow")
        assert logger.handlers, logger.handlers
        assert all(isinstance(h, logging.NullHandler) for h in logger.handlers), logger.handlers
        assert logging.getLogger().handlers == [], logging.getLogger().handlers
        assert logger.level == logging.NOTSET
        print("ok")
    """, subprocess_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_library_logs_nothing_by_default(db_path, tmp_path):
    """Running jobs (including a failing one) prints nothing unless logging is set up."""
    out = run_code(f"""
        from support import jobs
        from gigq_flow import Job, JobQueue, Worker
        queue = JobQueue({str(db_path)!r})
        queue.submit(Job("ok", jobs.noop))
        queue.submit(Job("bad", jobs.fail, max_attempts=1))
        worker = Worker({str(db_path)!r})
        while worker.process_one():
            pass
    """, subprocess_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


def test_setup_logging_sends_gigq_flow_logs_to_stderr(db_path):
    out = run_code(f"""
        import logging
        from support import jobs
        from gigq_flow import Job, JobQueue, Worker, setup_logging
        setup_logging(logging.INFO)
        setup_logging(logging.INFO)  # twice: still one handler
        logger = logging.getLogger("gigq_flow")
        streams = [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]
        assert len(streams) == 1, logger.handlers
        assert logger.level == logging.INFO
        queue = JobQueue({str(db_path)!r})
        queue.submit(Job("logged-job", jobs.noop))
        Worker({str(db_path)!r}).process_one()
    """, subprocess_env())
    assert out.returncode == 0, out.stderr
    assert "gigq_flow" in out.stderr
    assert "INFO" in out.stderr


def test_setup_logging_level_filters(db_path):
    out = run_code(f"""
        import logging
        from support import jobs
        from gigq_flow import Job, JobQueue, Worker, setup_logging
        setup_logging(logging.ERROR)
        queue = JobQueue({str(db_path)!r})
        queue.submit(Job("quiet", jobs.noop))
        Worker({str(db_path)!r}).process_one()
    """, subprocess_env())
    assert out.returncode == 0, out.stderr
    assert "INFO" not in out.stderr


def test_setup_logging_signature():
    import inspect

    assert inspect.signature(setup_logging).parameters["level"].default == logging.INFO
