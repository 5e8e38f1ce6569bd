"""What the workflow tests share: run a workflow on real worker threads, read statuses,
compute expectations from a networkx graph, run Python scripts in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import networkx as nx

from gigq_flow import JobQueue, Worker, WorkflowRun

RUN_TIMEOUT = 20.0
"""Longest a test waits for a workflow to finish (a deadline, not a sleep)."""

TERMINAL = {"completed", "failed", "cancelled", "timeout", "upstream_failed"}


def finish(queue: JobQueue, run: WorkflowRun, *, concurrency: int = 2,
           timeout: float = RUN_TIMEOUT) -> WorkflowRun:
    """Run ``run`` to the end on background worker threads of this process."""
    with Worker(queue.db_path, polling_interval=0.1, concurrency=concurrency,
                allow_pickle=True):  # the tests wrote the pickled payloads themselves
        assert run.wait(timeout=timeout), f"workflow not done within {timeout} s: {run!r}"
    return run


def statuses(queue: JobQueue, jobs: Iterable[Any]) -> dict[str, str]:
    """Job name -> status for Jobs (or ids) of one workflow (names must be unique)."""
    out = {}
    for job in jobs:
        job_id = job if isinstance(job, str) else job.id
        row = queue.get_status(job_id)
        out[row["name"]] = row["status"]
    return out


def error_of(queue: JobQueue, job: Any) -> str:
    return queue.get_status(job if isinstance(job, str) else job.id)["error"] or ""


def queue_footprint(queue: JobQueue) -> tuple[int, int]:
    """What a failed submit must leave unchanged: job count and workflow count."""
    return queue.stats()["total"], len(queue.list_workflows())


def expected_upstream_failed(graph: nx.DiGraph, failed: set[str]) -> set[str]:
    """Descendants of the failed jobs that are not themselves failed."""
    out: set[str] = set()
    for node in failed:
        out |= nx.descendants(graph, node)
    return out - failed


def python_script(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def run_python(script: Path, env: dict[str, str], *args: str, timeout: float = 60) -> Any:
    """Run a script in a fresh interpreter; return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True,
        timeout=timeout, cwd=script.parent,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])

