"""What the PostgreSQL benchmark's workers run, importable from any process: a no-op job for
gigq_flow, and procrastinate's app with the same no-op as its task.

Each job records when it finished, so a worker process can report its last completion.
"""

from __future__ import annotations

import time
from typing import Any

LAST_COMPLETION = [0.0]


def noop() -> None:
    """Do nothing but note the time, so that the benchmark measures the queue."""
    LAST_COMPLETION[0] = time.perf_counter()


def last_completion() -> float | None:
    """When this process's last job finished (``time.perf_counter()``), or None."""
    return LAST_COMPLETION[0] or None


def procrastinate_app(conninfo: str, schema: str) -> Any:
    """A procrastinate App on ``schema`` of the database (its tables live there)."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=conninfo, kwargs={"options": f"-c search_path={schema}"},
        min_size=1, max_size=2))
    app.task(name="noop", queue="bench")(noop)
    return app
