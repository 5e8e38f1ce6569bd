"""Helpers shared by the test modules (importable because tests/ is on sys.path)."""

from __future__ import annotations

import hashlib
import os
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


def is_postgres(location: Any) -> bool:
    return isinstance(location, str) and location.startswith("postgresql://")


class Record(tuple):
    """A row readable by position and by column name, as ``sqlite3.Row`` is."""

    def __new__(cls, names: list[str], values: Any) -> "Record":
        record = super().__new__(cls, values)
        record.names = {name: i for i, name in enumerate(names)}
        return record

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self.names[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self.names)


def rows(location: Path | str, statement: str, args: tuple = ()) -> list[Record]:
    """The rows of one read statement, by position or column name: a plain sqlite3
    connection for a file, the store's transport for a postgresql:// URL."""
    if is_postgres(location):
        from gigq_flow.store import open_store

        return [Record(list(row), row.values()) for row in
                open_store(location).db.read(statement, args)]
    conn = sqlite3.connect(location, timeout=60)
    try:
        cursor = conn.execute(statement, args)
        names = [column[0] for column in cursor.description]
        return [Record(names, row) for row in cursor.fetchall()]
    finally:
        conn.close()


TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for worker subprocesses: they import gigq_flow and the tests' modules."""
    env = dict(os.environ)
    paths = [str(TESTS_DIR), str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def sql(path: Path | str, statement: str, args: tuple = ()) -> list[tuple]:
    """Run one statement on a plain sqlite3 connection (GigQ-style SQL), or, for a
    postgresql:// URL, in one transaction of the store's own transport."""
    if is_postgres(path):
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


def claim_as(location: Any, worker_id: str):
    """Claim the best ready job through a store of its own, as a registered worker would;
    returns (store, instance, claim)."""
    from gigq_flow.store import open_store
    from gigq_flow.store import new_instance

    store, instance = open_store(location), new_instance()
    store.register_worker(instance, worker_id, 1, 60)
    return store, instance, store.claim(worker_id, f"{instance}-1")


def lapse_lease(location: Any, instance: str) -> None:
    """Make a worker's lease run out, as if it stopped sending heartbeats long ago."""
    sql(location, "UPDATE workers SET last_heartbeat = 0 WHERE instance = ?", (instance,))

