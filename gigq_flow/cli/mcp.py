"""``gigq-flow mcp``: the Model Context Protocol server over stdio (gigq-mcp's tools and
more; see :mod:`gigq_flow.mcp`). The SDK is loaded only when the command runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .common import PROG, add_cwd_to_path
from .workers import add_allow_options

if TYPE_CHECKING:
    from ..mcp.common import ServerSettings


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "mcp", help="serve the queue to AI agents: a Model Context Protocol server on stdio",
        description="Serve gigq-flow's tools (GigQ's gigq-mcp tools, workflows, a bounded "
                    "worker) over the Model Context Protocol on stdin/stdout, until the "
                    "client closes the session. A tool's db_path, else --db given here, "
                    "else $GIGQ_DB_PATH, else the default queue, names the queue. Needs "
                    f"the SDK: pip install '{PROG}[mcp]'.",
    )
    add_allow_options(p)
    p.set_defaults(handler=cmd_mcp)


def settings_from(args: argparse.Namespace) -> ServerSettings:
    """The server's settings: ``--db`` only when typed (the default yields to
    ``$GIGQ_DB_PATH``), and the worker options."""
    from ..mcp.common import ServerSettings  # the server's modules load when it runs

    allowed = args.allowed_modules
    return ServerSettings(
        db=args.db if getattr(args, "db_given", False) else None,
        allowed_modules=None if allowed is None else tuple(allowed),
        allow_pickle=args.allow_pickle,
    )


def cmd_mcp(args: argparse.Namespace) -> int:
    from ..mcp.server import serve

    add_cwd_to_path()  # job functions of the working directory import, as for a worker
    serve(settings_from(args))
    return 0
