"""``gigq-flow cache list`` and ``gigq-flow cache clear [--older-than DURATION]``: the
results that cached runs reuse, through :meth:`JobQueue.cache_entries` and
:meth:`JobQueue.clear_cache`.

Clearing forgets entries, never jobs: a job keeps its result, and a later cached run of
a cleared step runs it again.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Any

from .common import (
    console,
    non_negative_int,
    open_queue,
    print_json,
    short_time,
    table,
)

DEFAULT_LIST_LIMIT = 100
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", re.IGNORECASE)
DURATION_FORMS = "90s, 30m, 12h, 7d or a plain number of seconds"
SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("cache", help="list or clear the earlier results that cached "
                                          "workflow runs reuse")
    actions = p.add_subparsers(dest="action", metavar="{list,clear}", required=True)

    s = actions.add_parser("list", help="the stored results a cached run can reuse, most "
                                        "recently used first")
    s.add_argument("--limit", type=non_negative_int, metavar="N", default=DEFAULT_LIST_LIMIT,
                   help=f"at most this many entries (default: {DEFAULT_LIST_LIMIT})")
    s.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    s.set_defaults(handler=cmd_cache_list)

    c = actions.add_parser("clear", help="forget stored results (jobs keep theirs), so that "
                                         "cached runs run those steps again")
    c.add_argument("--older-than", type=duration, metavar="DURATION",
                   help=f"only entries not used for this long: {DURATION_FORMS}")
    c.add_argument("--json", action="store_true",
                   help="print how many entries were removed as a JSON object")
    c.set_defaults(handler=cmd_cache_clear)


def duration(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d`` or a plain number of seconds -> seconds."""
    match = DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write {DURATION_FORMS}")
    seconds = float(match.group(1)) * DURATION_UNITS[match.group(2).lower()]
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"{text!r} is too long a duration; write "
                                         f"{DURATION_FORMS}")
    return seconds


def short_duration(seconds: float) -> str:
    """Seconds in the largest unit that holds them whole: ``3600`` -> ``1h``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def human_size(size: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; empty when unknown."""
    if size is None:
        return ""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {SIZE_UNITS[unit]}"


def cmd_cache_list(args: argparse.Namespace) -> int:
    entries = open_queue(args).cache_entries(args.limit)
    if args.json:
        print_json(entries)
        return 0
    if not entries:
        print("No cache entries.")
        return 0
    rows = table("Step", "Function", "Size", "Created", "Last used", "From workflow", "Key")
    for entry in entries:
        rows.add_row(entry["name"], entry["step"],
                     human_size(entry["size"]), short_time(entry["created_at"]),
                     short_time(entry["used_at"]), entry["workflow_id"] or "", entry["key"])
    console().print(rows)
    if args.limit and len(entries) == args.limit and sys.stdout.isatty():  # for people
        print(f"the {args.limit} most recently used entries; --limit N shows more",
              file=sys.stderr)
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    cleared = open_queue(args).clear_cache(args.older_than)
    if args.json:
        report: dict[str, Any] = {"cleared": cleared, "older_than_seconds": args.older_than}
        print_json(report)
        return 0
    scope = "" if args.older_than is None else f" not used for {short_duration(args.older_than)}"
    print(f"Cleared {cleared} cache {'entry' if cleared == 1 else 'entries'}{scope}.")
    return 0
