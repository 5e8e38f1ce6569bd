"""Fixtures of the whole suite: the backend under test, a fresh queue per test, workers
and worker subprocesses that end with the test. What the test modules share besides
fixtures is in the ``support`` package (tests/ is on sys.path: see pyproject.toml).

The test modules are in folders by kind: ``unit/`` (no worker; plain Python subprocesses
at most), ``contract/`` (the queue, its jobs and workers, on every backend),
``workflows/``, ``viz/``, ``cli/`` (the ``gigq-flow`` command), ``mcp/`` (the
``gigq-flow mcp`` server: real stdio sessions through the SDK's client, and its tools as
functions on every backend), ``storage/`` (GigQ files, schema upgrades, moving a queue
between backends), ``reliability/`` (worker processes killed, frozen and signalled,
leases, races, security, bad input), ``api/`` (the package's public surface and logging)
and ``docs/`` (the guide, README, notebooks, examples and bench scripts stay true).
Module names are unique across folders: pytest imports them by name.

The contract suite: in a module marked ``pytestmark = pytest.mark.contract`` every test
that uses ``db_path`` runs twice, with ``backend`` ``sqlite`` (``db_path`` is a new file
path) and ``postgres`` (``db_path`` is a URL naming a fresh schema, dropped afterwards).
The PostgreSQL half runs against the server at $GIGQ_FLOW_TEST_POSTGRES (default: the
local one) and skips, saying why, when it does not answer. ``@pytest.mark.sqlite_only``
keeps one test of a contract module on SQLite (its reason says why).

A test that leaves a worker running makes it with ``make_worker``: ``process_one`` starts
a heartbeat thread that only ``close()`` ends, and ``start_background`` runs until
``stop()``. Those workers are stopped and closed at teardown, on PostgreSQL before the
schema they work on is dropped.

``support.cli`` runs ``gigq-flow`` commands in this process; a test that uses the
``cli_subprocesses`` fixture runs them as real subprocesses.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.cli import MODE_ENV
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


class Workers:
    """The workers a test makes (``make_worker(location, **options)``), and their end."""

    def __init__(self) -> None:
        self.made: list[gigq_flow.Worker] = []

    def __call__(self, location: Path | str, **options: Any) -> gigq_flow.Worker:
        worker = gigq_flow.Worker(location, **options)
        self.made.append(worker)
        return worker

    def close_all(self) -> None:
        """Stop each worker made so far (joining its background threads, if any) and close
        it, which ends its heartbeat thread."""
        while self.made:
            worker = self.made.pop()
            worker.stop(wait=True, timeout=10)
            worker.close()


@pytest.fixture
def make_worker():
    """Makes ``gigq_flow.Worker`` objects that are stopped and closed at teardown."""
    workers = Workers()
    yield workers
    workers.close_all()


@pytest.fixture(scope="session")
def pool_closers():
    """The threads closing the connection pools of the tests' schemas, joined at the end."""
    closers: list[threading.Thread] = []
    yield closers
    for closer in closers:
        closer.join()


@pytest.fixture
def postgres_url(make_worker: Workers, pool_closers: list[threading.Thread]):
    """A URL naming a fresh schema on the test server (dropped afterwards); skips without one.

    The test's workers (``make_worker``) are closed before the schema is dropped, so that
    no heartbeat thread goes on writing to a schema that no longer exists. The schema's
    pools are closed on a thread of their own while it is dropped: closing waits for the
    queue's listener thread to see its stop, up to a LISTEN poll (half a second)."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    from gigq_flow.store.postgres_connection import close_pools

    schema = f"test_{uuid.uuid4().hex[:16]}"
    url = schema_url(schema)
    try:
        yield url
    finally:
        make_worker.close_all()
        closer = threading.Thread(target=close_pools, args=(url,), name=f"close-{schema}")
        closer.start()
        pool_closers.append(closer)
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


@pytest.fixture
def cli_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's ``gigq-flow`` commands run as real subprocesses, not in this process
    (see support.cli): each command family keeps such a test."""
    monkeypatch.setenv(MODE_ENV, "subprocess")
