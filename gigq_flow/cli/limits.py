"""``gigq-flow limits [--json]``, ``limits set TAG N`` and ``limits clear TAG``: how many
jobs carrying a tag may run at once, across every worker of the queue, through
:meth:`JobQueue.limits`, :meth:`JobQueue.running_by_tag` and :meth:`JobQueue.set_limit`.

A map's ``max_active`` shows here too, as the limit of its tag ``map:<map id>`` (gone
once the map is collected).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..job_queue import JobQueue
from .common import PROG, UsageError, console, open_queue, print_json, table


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("limits", help="list, set or clear how many jobs of a tag may "
                                           "run at once")
    p.add_argument("--json", action="store_true",
                   help="print each limited tag, its limit and its running jobs as a JSON list")
    p.set_defaults(handler=cmd_limits)
    actions = p.add_subparsers(dest="action", metavar="{set,clear}")

    s = actions.add_parser("set", help="let at most N jobs tagged TAG run at once, across "
                                       "every worker of the queue")
    s.add_argument("tag", metavar="TAG")
    s.add_argument("max_running", metavar="N", help="an integer >= 1")
    s.add_argument("--json", action="store_true", help="print the new limit as a JSON object")
    s.set_defaults(handler=cmd_limits_set)

    c = actions.add_parser("clear", help="remove the limit of TAG: its jobs run as workers "
                                         "free up")
    c.add_argument("tag", metavar="TAG")
    c.add_argument("--json", action="store_true",
                   help="print whether a limit was removed as a JSON object")
    c.set_defaults(handler=cmd_limits_clear)


def check_tag(tag: str) -> str:
    """A tag as jobs carry it: non-empty, one line."""
    if not tag.strip() or "\n" in tag:
        raise UsageError(f"limits: tag {tag!r} is empty or spans lines; a tag is a non-empty, "
                         "one-line string such as gpu")
    return tag


def parse_limit(tag: str, text: str) -> int:
    """``N`` of ``limits set``: a whole number >= 1."""
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"limits set {tag} {text}: N must be an integer >= 1 (how many jobs "
                         f"tagged {tag!r} may run at once), got {text!r}; "
                         f"'{PROG} limits clear {tag}' removes the limit")
    return value


def limit_rows(queue: JobQueue) -> list[dict[str, Any]]:
    """Each limited tag: ``tag``, ``max_running`` and ``running`` (its jobs running now)."""
    running = queue.running_by_tag()
    return [{"tag": tag, "max_running": limit, "running": running.get(tag, 0)}
            for tag, limit in queue.limits().items()]


def cmd_limits(args: argparse.Namespace) -> int:
    rows = limit_rows(open_queue(args))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No limits: any number of jobs of every tag may run at once.")
        return 0
    grid = table("Tag", "Limit", "Running")
    for row in rows:
        grid.add_row(row["tag"], str(row["max_running"]), str(row["running"]))
    console().print(grid)
    return 0


def cmd_limits_set(args: argparse.Namespace) -> int:
    tag = check_tag(args.tag)
    limit = parse_limit(tag, args.max_running)
    queue = open_queue(args, create=True)
    previous = queue.limits().get(tag)
    queue.set_limit(tag, limit)
    if args.json:
        print_json({"tag": tag, "max_running": limit, "previous": previous})
    else:
        print(f"Limit set: at most {limit} job{'' if limit == 1 else 's'} tagged {tag!r} "
              "run at once.")
    return 0


def cmd_limits_clear(args: argparse.Namespace) -> int:
    tag = check_tag(args.tag)
    queue = open_queue(args)
    previous = queue.limits().get(tag)
    if previous is not None:
        queue.set_limit(tag, None)
    if args.json:
        print_json({"tag": tag, "removed": previous is not None, "previous": previous})
    elif previous is None:
        print(f"No limit on tag {tag!r}; nothing changed.")
    else:
        print(f"Limit removed: jobs tagged {tag!r} run without a limit (it was {previous}).")
    return 0
