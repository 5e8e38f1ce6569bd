"""The ``gigq-flow`` command (also ``python -m gigq_flow``): GigQ's CLI plus workflows.

GigQ's commands print GigQ's text (:mod:`.views`). Options come from the flags, before
or after the command, then from the environment: ``$GIGQ_FLOW_DB``, then GigQ's
``$GIGQ_DB``, for ``--db``; ``$GIGQ_WORKER_ID`` and ``$GIGQ_POLLING_INTERVAL`` for the
worker's options.

Exit statuses: 0 success; 1 a valid request the queue refused (cancelling a finished
job, ...), a workflow followed with ``--wait`` that did not fully complete, or an
unexpected error (``-v`` shows its traceback); 2 bad input (unknown id, unimportable
function, malformed option or environment variable, a file that is not a queue),
reported as one ``gigq-flow: error: ...`` line on stderr; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import GigqFlowError
from ..logs import setup_logging
from ..workflow import DEFAULT_DB_PATH
from . import cache, demo, jobs, limits, logs, mcp, migrate, workers, workflows
from .common import (
    DB_ENV_VAR,
    GIGQ_DB_ENV_VAR,
    PROG,
    DbOption,
    Parser,
    RefusedError,
    UsageError,
    default_db,
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> Parser:
    db_help = (f"the queue: a SQLite file, or a postgresql:// URL (default: ${DB_ENV_VAR} "
               f"if set, else ${GIGQ_DB_ENV_VAR} if set, else {DEFAULT_DB_PATH} in the "
               "working directory)")
    parser = Parser(
        prog=PROG,
        description="Manage gigq_flow queues, workers and workflows from a terminal.",
        epilog=f"Start with '{PROG} demo'. Every command takes --help.",
    )
    parser.add_argument("--db", default=default_db(), metavar="PATH", help=db_help,
                        action=DbOption)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug) on stderr")
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    # --db, -v and -q are accepted after the command too (gigq-flow list --db jobs.db).
    db_after = Parser(add_help=False)
    db_after.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH", help=db_help,
                          action=DbOption)
    db_after.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                          help="log more (-v info, -vv debug) on stderr")
    db_after.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                          help="log errors only")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=_with_parent(db_after))
    jobs.register(commands)
    logs.register(commands)
    workers.register(commands)
    workflows.register(commands)
    cache.register(commands)
    limits.register(commands)
    demo.register(commands)
    migrate.register(commands)
    mcp.register(commands)
    return parser


def _with_parent(parent: Parser) -> type[Parser]:
    class CommandParser(Parser):
        def __init__(self, **kwargs: object) -> None:
            kwargs.setdefault("parents", [parent])
            super().__init__(**kwargs)  # type: ignore[arg-type]

    return CommandParser


def configure_logging(args: argparse.Namespace) -> None:
    level = logging.getLevelName(getattr(args, "log_level", "WARNING"))
    if args.quiet:
        level = logging.ERROR
    elif args.verbose:
        level = max(logging.DEBUG, min(level, logging.WARNING) - 10 * args.verbose)
    setup_logging(level)
    # Libraries' own warnings (e.g. a connection pool retrying) would add lines to the one
    # error line a failure prints; gigq_flow reports what matters itself.
    root = logging.getLogger()
    if not any(isinstance(handler, logging.NullHandler) for handler in root.handlers):
        root.addHandler(logging.NullHandler())


def report(message: object) -> None:
    """One line on stderr, whatever the message holds."""
    text = " ".join(str(message).split()) or "unknown error"
    print(f"{PROG}: error: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        report(exc)
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_USAGE
    configure_logging(args)
    try:
        return args.handler(args)
    except RefusedError as exc:
        report(exc)
        return EXIT_REFUSED
    except GigqFlowError as exc:
        report(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. gigq-flow list | head
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_REFUSED
    except OSError as exc:  # a file named on the command line cannot be written or read
        where = f"{exc.filename}: " if exc.filename else ""
        report(f"{where}{exc.strerror or exc}")
        return EXIT_USAGE
    except Exception as exc:  # a bug: one line by default, the traceback with -v
        if args.verbose:
            raise
        report(f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)")
        return EXIT_REFUSED


__all__ = ["build_parser", "main"]
