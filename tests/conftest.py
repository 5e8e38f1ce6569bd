"""Shared fixtures: a fresh queue per test, and helpers for worker subprocesses.

The contract suite: in a module marked ``pytestmark = pytest.mark.contract`` every test
that uses ``db_path`` runs twice, with ``backend`` ``sqlite`` (``db_path`` is a new file
path) and ``postgres`` (``db_path`` is a URL naming a fresh schema, dropped afterwards).
The PostgreSQL half runs against the server at $GIGQ_FLOW_TEST_POSTGRES (default: the
local one) and skips, saying why, when it does not answer. ``@pytest.mark.sqlite_only``
keeps one test of a contract module on SQLite (its reason says why).
"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import pytest
from support.db import drop_schema, postgres_unavailable, schema_url
from support.processes import WorkerPool

import gigq_flow

BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("contract") is None:
        return
    only = metafunc.definition.get_closest_marker("sqlite_only")
    metafunc.parametrize("backend", BACKENDS[:1] if only else BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``sqlite`` outside contract modules."""
    name = getattr(request, "param", "sqlite")
    if name == "postgres":
        reason = postgres_unavailable()
        if reason:
            pytest.skip(reason)
    return name


@pytest.fixture
def postgres_url():
    """A URL naming a fresh schema on the test server (dropped afterwards); skips without one."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    from gigq_flow.store.postgres_connection import close_pools

    schema = f"test_{uuid.uuid4().hex[:16]}"
    url = schema_url(schema)
    workers = []
    original_init = gigq_flow.Worker.__init__

    @functools.wraps(original_init)
    def tracked_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        workers.append(self)

    # Workers a test leaves behind (process_one starts a heartbeat thread) are stopped
    # before their schema goes, so no thread reconnects to it afterwards.
    gigq_flow.Worker.__init__ = tracked_init
    try:
        yield url
    finally:
        gigq_flow.Worker.__init__ = original_init
        for worker in workers:
            worker.stop()
            worker.close()
        close_pools(url)
        drop_schema(schema)


@pytest.fixture
def db_path(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """The queue's location: a path for a new SQLite file (not created yet), or, for the
    postgres backend, a URL naming a fresh schema."""
    if backend == "sqlite":
        return tmp_path / "q.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def queue(db_path: Path):
    q = gigq_flow.JobQueue(db_path)
    yield q
    q.close()


@pytest.fixture(autouse=True)
def _close_connections():
    yield
    gigq_flow.close_connections()


@pytest.fixture
def pool(db_path, tmp_path):
    """Worker subprocesses on the queue (support.processes.WorkerPool), killed at teardown."""
    pool = WorkerPool(db_path, tmp_path)
    yield pool
    pool.kill_all()

