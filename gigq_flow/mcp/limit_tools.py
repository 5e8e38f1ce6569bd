"""Tags and limits: ``gigq_set_limit`` caps how many jobs carrying a tag run at once
across every worker of the queue (``JobQueue.set_limit``); ``gigq_list_limits`` lists
the limits with how many jobs of each tag run now."""

from __future__ import annotations

from typing import Any

from ..cli.limits import limit_rows
from ..locations import describe_location
from .common import (
    DEFAULT_SETTINGS,
    Response,
    ServerSettings,
    check_integer,
    described,
    invalid,
    ok,
    queue_at,
    resolve_db,
    tool,
    valid_tags,
)

MAX_LIMIT = 1_000_000


def check_tag(tag: Any) -> str:
    if not valid_tags([tag]):
        raise invalid("tag", f"must be a non-empty, one-line string, got {described(tag)}",
                      'pass e.g. tag="gpu"')
    return str(tag)


@tool
def set_limit(tag: str, max_running: int | None, db_path: str | None = None, *,
              settings: ServerSettings | None = None) -> Response:
    """Let at most ``max_running`` jobs carrying ``tag`` (``tags`` of gigq_submit_job or
    of a workflow step) run at once, across every worker of the queue; null removes the
    limit. Jobs already running stay running; the limit holds for the next claims.
    Returns ``tag``, ``max_running`` and ``previous`` (the limit before, or null)."""
    tag = check_tag(tag)
    if max_running is not None:
        max_running = check_integer("max_running", max_running, minimum=1, maximum=MAX_LIMIT,
                                    example=2)
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=max_running is not None) as queue:
        previous = None if queue is None else queue.limits().get(tag)
        if queue is not None and (max_running is not None or previous is not None):
            queue.set_limit(tag, max_running)
    return ok(tag=tag, max_running=max_running, previous=previous,
              db_path=describe_location(location))


@tool
def list_limits(db_path: str | None = None, *,
                settings: ServerSettings | None = None) -> Response:
    """Every limited tag: ``limits`` lists ``tag``, ``max_running`` and ``running`` (its
    jobs running now), by tag. A map's ``max_active`` shows as the limit of its tag
    ``map:<map id>`` until the map completes."""
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        rows = [] if queue is None else limit_rows(queue)
    return ok(limits=rows, count=len(rows), db_path=describe_location(location))
