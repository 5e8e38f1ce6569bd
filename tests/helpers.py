"""Helpers shared by the test modules (importable because tests/ is on sys.path)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

import gigq_flow


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


def sql(path: Path | str, statement: str, args: tuple = ()) -> list[tuple]:
    """Run one statement on a plain sqlite3 connection (GigQ-style SQL), or, for a
    postgresql:// URL, in one transaction of the store's own transport."""
    if isinstance(path, str) and path.startswith("postgresql://"):
        from gigq_flow.store import open_store

        def body(tx):
            cursor = tx.execute(statement, args)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

        return open_store(path).db.run(body)
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(statement, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()
