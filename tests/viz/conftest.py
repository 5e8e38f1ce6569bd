"""Fixtures of the visualization tests."""

from __future__ import annotations

import pytest
from support.viz import every_status_run


@pytest.fixture
def every_status(queue, make_worker):
    """A run with a job in every status (see support.viz.every_status_run), released and
    finished at teardown."""
    state = every_status_run(queue, make_worker)
    yield state
    state.finish()
