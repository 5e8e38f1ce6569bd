"""Fixtures of the ``gigq-flow`` command tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The queue file the commands name with ``--db`` (not created yet)."""
    return tmp_path / "jobs.db"
