"""The systems under test, one class each, behind one small interface.

Every system keeps its queue in one SQLite file inside a directory it is given. It
submits no-op jobs one by one through its public API, bulk-inserts low-priority
"waiting" jobs for the queue-size scenario, and drains one job per call the way a
worker does (``process_one`` or its equivalent). Each peer runs with its own default
settings; only the raw loop and gigq_flow set ``synchronous=NORMAL``.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import gigq
import gigq.db_utils
from huey import SqliteHuey

import gigq_flow
from gigq_flow.codec import to_new_job

from .jobs import noop

if TYPE_CHECKING:
    from .workflow_systems import WorkflowSystem

WAITING_PRIORITY = -1
"""Waiting jobs rank below the default priority (0), so the measured jobs are claimed first."""


class System(Protocol):
    name: str

    def __init__(self, directory: str) -> None: ...

    def submit(self, count: int) -> None:
        """Submit ``count`` no-op jobs one at a time through the public API."""

    def add_waiting(self, count: int) -> None:
        """Insert ``count`` no-op jobs at WAITING_PRIORITY in one transaction."""

    def process_one(self) -> bool:
        """Claim, run and complete one job; False when none was ready."""

    def unfinished(self) -> int:
        """How many jobs are not done yet."""

    def close(self) -> None: ...


def drain(system: System | WorkflowSystem) -> None:
    """Claim, run and complete jobs in this process until none is ready."""
    while system.process_one():
        pass


def expect_unfinished(system: System | WorkflowSystem, expected: int) -> None:
    """Refuse to report a figure for a run that did not do the work."""
    left = system.unfinished()
    if left != expected:
        raise RuntimeError(f"{system.name}: {left} jobs unfinished, expected {expected}")


class QueueAndWorker:
    """What gigq_flow and gigq share, their APIs being one: a JobQueue and a Worker of the
    package ``api`` on one file, ``name``.db in the directory given."""

    name: str
    api: Any

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"{self.name}.db")
        self.queue = self.api.JobQueue(self.path)
        self.worker = self.api.Worker(self.path)

    def process_one(self) -> bool:
        return self.worker.process_one()

    def unfinished(self) -> int:
        stats = self.queue.stats()
        return stats["total"] - stats["completed"]

    def close(self) -> None:
        self.worker.close()
        self.queue.close()


class GigqFlow(QueueAndWorker):
    name = "gigq_flow"
    api = gigq_flow

    def submit(self, count: int) -> None:
        for i in range(count):
            self.queue.submit(gigq_flow.Job(f"noop-{i}", noop))

    def add_waiting(self, count: int) -> None:
        self.queue.store.submit([
            to_new_job(gigq_flow.Job(f"waiting-{i}", noop, priority=WAITING_PRIORITY))
            for i in range(count)
        ])


class Gigq(QueueAndWorker):
    name = "gigq"
    api = gigq

    def submit(self, count: int) -> None:
        for i in range(count):
            self.queue.submit(gigq.Job(f"noop-{i}", noop))

    def add_waiting(self, count: int) -> None:
        # gigq has no bulk submit: write the rows its submit writes, in one transaction.
        now = datetime.now().isoformat()
        jobs = [gigq.Job(f"waiting-{i}", noop, priority=WAITING_PRIORITY) for i in range(count)]
        conn = gigq.db_utils.get_connection(self.path)
        with conn:
            conn.executemany(
                """INSERT INTO jobs (id, name, function_name, function_module, params, priority,
                       dependencies, max_attempts, timeout, description, status, created_at,
                       updated_at, attempts, retry_delay)
                   VALUES (?, ?, ?, ?, '{}', ?, '[]', 3, 300, '', 'pending', ?, ?, 0, 0)""",
                [(job.id, job.name, noop.__name__, noop.__module__, job.priority,
                  job.created_at, now) for job in jobs],
            )


class Huey:
    """SqliteHuey with a consumer's dequeue-then-execute step in place of process_one."""

    name = "huey"

    def __init__(self, directory: str) -> None:
        self.huey = SqliteHuey(filename=os.path.join(directory, "huey.db"))
        self.task = self.huey.task()(noop)

    def submit(self, count: int) -> None:
        for _ in range(count):
            self.task()

    def add_waiting(self, count: int) -> None:
        # huey has no bulk enqueue: insert serialized tasks in one of its storage's transactions.
        rows = [
            (self.huey.name, self.huey.serialize_task(self.task.s(priority=WAITING_PRIORITY)),
             WAITING_PRIORITY)
            for _ in range(count)
        ]
        with self.huey.storage.db(commit=True) as cursor:
            cursor.executemany("INSERT INTO task (queue, data, priority) VALUES (?, ?, ?)", rows)

    def process_one(self) -> bool:
        task = self.huey.dequeue()
        if task is None:
            return False
        self.huey.execute(task)
        return True

    def unfinished(self) -> int:
        return self.huey.pending_count()

    def close(self) -> None:
        self.huey.storage.close()


class RawSQLite:
    """The floor: an indexed table, WAL, synchronous=NORMAL, two transactions a job
    (a BEGIN IMMEDIATE claim UPDATE, then a complete UPDATE)."""

    name = "raw sqlite"

    def __init__(self, directory: str) -> None:
        self.conn = sqlite3.connect(
            os.path.join(directory, "raw.db"), timeout=30, isolation_level=None
        )
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, "
            "priority INTEGER NOT NULL, status TEXT NOT NULL)"
        )
        self.conn.execute(
            "CREATE INDEX IF NOT EXISTS ready ON jobs (priority DESC, id) WHERE status = 'pending'"
        )

    def submit(self, count: int) -> None:
        for _ in range(count):
            self.conn.execute("INSERT INTO jobs (priority, status) VALUES (0, 'pending')")

    def add_waiting(self, count: int) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT INTO jobs (priority, status) VALUES (?, 'pending')",
            [(WAITING_PRIORITY,)] * count,
        )
        self.conn.execute("COMMIT")

    def process_one(self) -> bool:
        self.conn.execute("BEGIN IMMEDIATE")
        row = self.conn.execute(
            "UPDATE jobs SET status = 'running' WHERE id = (SELECT id FROM jobs "
            "WHERE status = 'pending' ORDER BY priority DESC, id LIMIT 1) RETURNING id"
        ).fetchone()
        self.conn.execute("COMMIT")
        if row is None:
            return False
        noop()
        self.conn.execute("UPDATE jobs SET status = 'done' WHERE id = ?", row)
        return True

    def unfinished(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM jobs WHERE status != 'done'").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


SYSTEMS: dict[str, type[System]] = {
    system.name: system for system in (GigqFlow, Gigq, Huey, RawSQLite)
}
"""Every system by name, gigq_flow first: the ratios in the report are gigq_flow / peer."""
