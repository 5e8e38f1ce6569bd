"""What every command shares: the usage error, the environment, opening the queue,
argument types, output."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import GigqFlowError
from ..job_queue import JobQueue
from ..job_status import JobStatus
from ..locations import describe_location, is_postgres_url
from ..viz.styles import get_styles
from ..workflow import DEFAULT_DB_PATH

T = TypeVar("T")

PROG = "gigq-flow"
DB_ENV_VAR = "GIGQ_FLOW_DB"
GIGQ_DB_ENV_VAR = "GIGQ_DB"
"""GigQ's documented default of ``--db``, read after ``$GIGQ_FLOW_DB``."""
WORKER_ID_ENV_VAR = "GIGQ_WORKER_ID"
POLLING_INTERVAL_ENV_VAR = "GIGQ_POLLING_INTERVAL"
WORKER_EXAMPLE_CONCURRENCY = 4
"""The ``--concurrency`` of the worker command that reminders suggest."""
WIDE_OUTPUT = 1000
"""Console width when stdout is not a terminal: tables keep one row per line in pipes."""


class UsageError(GigqFlowError, ValueError):
    """The command line asks for something that cannot work as typed (exit status 2)."""


class RefusedError(GigqFlowError):
    """A valid request the queue's current state refuses, e.g. cancelling a finished job
    (exit status 1)."""


class DbOption(argparse.Action):
    """``--db``: stores the location and sets ``db_given``, so that a command can tell a
    ``--db`` typed on its command line from the default (``mcp`` ranks them apart)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.db_given = True


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake becomes one ``UsageError`` line instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- argument types (argparse turns their ValueError/TypeError into a usage error) --------
def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


non_negative_int.__name__ = positive_int.__name__ = "integer"


# -- the environment: defaults under the flags ----------------------------------------------
def env_value(name: str) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    return os.environ.get(name) or None


def env_option(name: str, convert: Callable[[str], T], flag: str) -> T | None:
    """``$name`` read as ``convert`` reads a flag's text; None when unset. A value
    ``convert`` refuses is a usage error naming the variable and the flag that
    overrides it."""
    text = env_value(name)
    if text is None:
        return None
    try:
        return convert(text)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
        reason = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else "malformed"
        raise UsageError(f"environment variable {name}={text!r}: {reason}; "
                         f"fix or unset it, or pass {flag}") from None


# -- the queue ------------------------------------------------------------------------------
def add_cwd_to_path() -> None:
    """Let ``submit`` and ``worker`` import modules of the working directory, as
    ``python -m`` would (a console script does not put it on sys.path)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def default_db() -> str:
    """``--db`` when not given: ``$GIGQ_FLOW_DB``, else GigQ's ``$GIGQ_DB``, else the
    embedded default in the working directory."""
    return env_value(DB_ENV_VAR) or env_value(GIGQ_DB_ENV_VAR) or DEFAULT_DB_PATH


def open_queue(args: argparse.Namespace, *, create: bool = False) -> JobQueue:
    """The queue at ``--db``. Commands that only read or change existing jobs refuse a
    missing file instead of creating an empty queue where a typo pointed."""
    location = args.db
    if not create and not is_postgres_url(location) and not os.path.exists(location):
        raise UsageError(
            f"no queue at {describe_location(location)} (the file does not exist); "
            f"pass --db PATH, or create it with '{PROG} submit' or '{PROG} demo'"
        )
    return JobQueue(location)


def worker_command(location: str, *, allowed_modules: Sequence[str] = (),
                   allow_pickle: bool = False) -> str:
    """The shell command that starts a worker on ``location`` (the reminder that
    submissions give: nothing runs until a worker does)."""
    parts = [PROG, "--db", shlex.quote(describe_location(location)), "worker",
             "--concurrency", str(WORKER_EXAMPLE_CONCURRENCY)]
    for module in allowed_modules:
        parts += ["--allow-module", shlex.quote(module)]
    if allow_pickle:
        parts.append("--allow-pickle")
    return " ".join(parts)


# -- output ---------------------------------------------------------------------------------
def console() -> Console:
    """A rich console on stdout; user text is never read as markup."""
    wide = None if sys.stdout.isatty() else WIDE_OUTPUT
    return Console(width=wide, markup=False, highlight=False, emoji=False)


def table(*columns: str, title: str | None = None) -> Table:
    grid = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title,
                 title_justify="left", title_style="bold")
    for column in grid.columns:
        column.overflow = "fold"
    return grid


def status_text(status: str, label: str | None = None) -> Text:
    """``label`` (default: the status itself) in the terminal colour of ``status``, from
    the one style map the pictures and the panel use too."""
    try:
        style = get_styles()[JobStatus(status)]
    except ValueError:
        return Text(label or status)
    return Text(f"{style.symbol} {label or status}", style=style.terminal)


def status_word(status: str) -> Text:
    """The status as GigQ prints it, in its terminal colour (no symbol: scripts read
    these words)."""
    try:
        style = get_styles()[JobStatus(status)]
    except ValueError:
        return Text(status)
    return Text(status, style=style.terminal)


def short_time(iso: str | None) -> str:
    """``2024-05-01T12:00:00.123456`` -> ``2024-05-01 12:00:00``; empty when unset."""
    if not iso:
        return ""
    return iso[:19].replace("T", " ")


def print_json(value: Any) -> None:
    """Machine-readable output: indented JSON; values JSON cannot hold become strings."""
    print(json.dumps(value, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def to_json_text(value: Any) -> str:
    """A value as one JSON line for a table cell or a status field."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)
