"""The wiring to the official ``mcp`` SDK (``mcp>=1.20,<2``): a low-level ``Server`` that
lists the catalog's tools and calls them, over stdio.

The SDK is imported here only, inside functions: ``import gigq_flow`` and the rest of
the CLI never load it, and without it ``gigq-flow mcp`` says what to install. The
low-level server (rather than FastMCP) keeps the tools' own answers to bad arguments:
FastMCP would reject them first with a generic validation message.

Over stdio the protocol owns stdin and stdout, and a job run by ``gigq_run_worker`` that
prints would corrupt it. :func:`protocol_streams` gives the protocol private copies of
the two descriptors and points the process's stdout at stderr and its stdin at
``/dev/null``, for Python code and subprocesses alike.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..cli.common import UsageError
from .catalog import TOOLS, call_tool
from .common import ServerSettings

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

SDK_REQUIREMENT = "mcp>=1.20,<2"
SDK_RANGE = ((1, 20), (2, 0))
INSTALL_HINT = "pip install 'gigq-flow[mcp]'"
SERVER_NAME = "gigq-flow"
INSTRUCTIONS = (
    "gigq-flow is a job queue and workflow engine on a SQLite file or PostgreSQL. Submit "
    "jobs (gigq_submit_job) or DAG workflows (gigq_submit_workflow) of module-level Python "
    "functions that the server and the workers can import; follow them (gigq_get_job_status, "
    "gigq_list_jobs, gigq_queue_stats, gigq_get_workflow_status) and read their results "
    "(gigq_get_job_result, gigq_get_workflow_results) and what they printed and logged, with "
    "the traceback of a failure (gigq_get_job_logs). Jobs run only when a worker runs on "
    "the same queue: a 'gigq-flow worker' process, or gigq_run_worker, which runs the ready "
    "jobs inside this server for a bounded time. A workflow submitted with cache=true "
    "reuses the results of earlier runs whose steps did not change; gigq_rerun_workflow runs "
    "a workflow again (after a failure, only what failed and its dependents run) and "
    "gigq_explain_workflow says why each step ran or was reused. gigq_cancel_job cancels a "
    "pending job (a running one too with running=true); gigq_cancel_workflow ends every "
    "unfinished step of a run. A workflow step with map_over runs its function once per "
    "element of another step's list; tags on jobs and steps, with gigq_set_limit and "
    "gigq_list_limits, cap how many jobs of a kind run at once. Params and results are "
    "JSON. Every response has 'success'; an error has a 'code' and a 'message' that names "
    "the fix."
)


def require_sdk() -> None:
    """Raise a one-line UsageError unless a suitable ``mcp`` SDK is importable."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise UsageError(
            f"the mcp command needs the Model Context Protocol SDK ({SDK_REQUIREMENT}), "
            f"which is not installed; install it with: {INSTALL_HINT}"
        ) from None
    try:
        version = metadata.version("mcp")
    except metadata.PackageNotFoundError:  # imported from a source tree: trust it
        return
    numbers = tuple(int(part) if part.isdigit() else 0 for part in version.split(".")[:2])
    low, high = SDK_RANGE
    if not low <= numbers < high:
        raise UsageError(
            f"the mcp command needs {SDK_REQUIREMENT}, found mcp {version}; install a "
            f"supported version with: pip install '{SDK_REQUIREMENT}'"
        )


def build_server(settings: ServerSettings) -> Server:
    """A low-level SDK server offering the catalog's tools, called in worker threads (a
    call that runs jobs must not stall the session)."""
    import anyio.to_thread
    import mcp.types as types
    from mcp.server.lowlevel import Server

    server: Server = Server(SERVER_NAME, version=__version__, instructions=INSTRUCTIONS)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [
            types.Tool(
                name=spec.name, description=spec.description, inputSchema=spec.input_schema(),
                annotations=types.ToolAnnotations(readOnlyHint=spec.read_only,
                                                  destructiveHint=spec.destructive,
                                                  openWorldHint=False),
            )
            for spec in TOOLS
        ]

    @server.call_tool(validate_input=False)
    async def handle_call(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        response = await anyio.to_thread.run_sync(call_tool, name, arguments, settings)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(
                response, indent=2, ensure_ascii=False))],
            structuredContent=response,
            isError=not response["success"],
        )

    return server


@contextmanager
def protocol_streams() -> Iterator[tuple[io.TextIOWrapper | None, io.TextIOWrapper | None]]:
    """Private text streams on copies of fd 0 and fd 1 for the protocol, while fd 1 points
    at stderr and fd 0 at /dev/null; restored afterwards. (None, None) when stdin and
    stdout are not file descriptors: the SDK then uses them as they are."""
    try:
        sys.stdout.flush()
        fds = (sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        yield None, None
        return
    stdin_fd, stdout_fd, stderr_fd = fds
    saved_in, saved_out = os.dup(stdin_fd), os.dup(stdout_fd)
    reader = io.TextIOWrapper(os.fdopen(os.dup(saved_in), "rb"), encoding="utf-8",
                              errors="replace")
    writer = io.TextIOWrapper(os.fdopen(os.dup(saved_out), "wb"), encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(stderr_fd, stdout_fd)
        os.dup2(devnull, stdin_fd)
        yield reader, writer
    finally:
        os.close(devnull)
        sys.stdout.flush()
        os.dup2(saved_out, stdout_fd)
        os.dup2(saved_in, stdin_fd)
        os.close(saved_out)
        os.close(saved_in)
        for stream in (writer, reader):
            try:
                stream.close()
            except OSError:  # the client closed its end first
                pass


def serve(settings: ServerSettings) -> None:
    """Serve the tools over stdio until the client closes the session."""
    require_sdk()
    import anyio

    server = build_server(settings)
    with protocol_streams() as (reader, writer):
        anyio.run(_serve_stdio, server, reader, writer)


async def _serve_stdio(server: Server, reader: io.TextIOWrapper | None,
                       writer: io.TextIOWrapper | None) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    stdin = anyio.wrap_file(reader) if reader is not None else None
    stdout = anyio.wrap_file(writer) if writer is not None else None
    async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
