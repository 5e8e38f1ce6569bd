"""``gigq-flow migrate SRC DST``: copy a queue between SQLite files and PostgreSQL."""

from __future__ import annotations

import argparse

from ..locations import describe_location
from ..migrate import copy_queue
from .common import console, table


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "migrate", help="copy a queue (jobs, edges, executions, workflows, workers) to "
                        "another database, e.g. a SQLite file to PostgreSQL")
    p.add_argument("source", metavar="SRC", help="the queue to copy: a SQLite file or a "
                                                 "postgresql://...?schema=NAME URL")
    p.add_argument("destination", metavar="DST", help="where to copy it (created if missing; "
                                                      "must be empty unless --force)")
    p.add_argument("--force", action="store_true",
                   help="replace the contents of a non-empty destination")
    p.set_defaults(handler=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    copied = copy_queue(args.source, args.destination, force=args.force)
    grid = table("Table", "Rows",
                 title=f"Copied {describe_location(args.source)} to "
                       f"{describe_location(args.destination)}")
    for name, count in copied.items():
        grid.add_row(name, str(count))
    console().print(grid)
    return 0
