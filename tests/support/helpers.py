"""Small helpers of the test modules: paths, running a worker dry, polling, reading
files that jobs write, and the environment of subprocesses."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gigq_flow
from support.jobs import FAIL_ENV

TESTS_DIR = Path(__file__).resolve().parent.parent
"""``tests/``: the directory that holds the ``support`` package."""
REPO_ROOT = TESTS_DIR.parent


def drain(worker: gigq_flow.Worker, limit: int = 10_000) -> int:
    """Run ``process_one`` until no job is ready; return how many ran."""
    ran = 0
    while worker.process_one():
        ran += 1
        assert ran < limit, "queue never drained"
    return ran


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.01,
               what: str = "") -> Any:
    """Poll ``predicate`` (for state only observable in the database or in files, often
    changed by another process); fail after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout} s")
        time.sleep(interval)


def status_of(queue: gigq_flow.JobQueue, job_id: str) -> str:
    return queue.get_status(job_id)["status"]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lines(path: str | Path) -> list[str]:
    """The lines of a file that jobs append to (see support.jobs.record_call); [] while
    it does not exist."""
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (Linux: reads /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for subprocesses (workers, scripts, commands): they import gigq_flow
    from this checkout and ``support.jobs`` from ``tests/``; without the switch that
    makes :func:`support.jobs.hold` fail, unless ``extra`` sets it."""
    env = dict(os.environ)
    paths = [str(TESTS_DIR), str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop(FAIL_ENV, None)
    env.update(extra or {})
    return env
