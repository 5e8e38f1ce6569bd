"""Shared fixtures: a fresh queue file per test, and helpers for worker subprocesses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

# Job functions live in tests/jobfuncs.py; workers import them as ``jobfuncs``.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import gigq_flow  # noqa: E402


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a new queue file (not created yet)."""
    return tmp_path / "q.db"


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
def subprocess_env() -> dict[str, str]:
    """Environment for worker subprocesses: they can import gigq_flow and jobfuncs."""
    env = dict(os.environ)
    paths = [str(TESTS_DIR), str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env
