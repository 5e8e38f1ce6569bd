"""A real Model Context Protocol session with a ``gigq-flow mcp`` subprocess, through the
SDK's own client (``stdio_client`` + ``ClientSession``), driven synchronously from tests
by an anyio blocking portal: one server process serves every test of a module."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import InitializeResult, Tool

from support.cli import cli_env

REQUEST_TIMEOUT = timedelta(seconds=120)


def server_env(**extra: str) -> dict[str, str]:
    """The server's environment: ``support.jobs`` importable, and no queue chosen by the
    environment of the test process (``GIGQ_DB_PATH``, ``GIGQ_FLOW_DB``) unless given."""
    env = cli_env()
    env.pop("GIGQ_DB_PATH", None)
    env.update(extra)
    return env


class McpServer:
    """``python -m gigq_flow [global_args] mcp [mcp_args]`` in ``cwd``, with a session.

    ``call(tool, **arguments)`` returns the tool's response (the JSON text of the result,
    checked to equal its structured content, and ``isError`` to match ``success``);
    ``raw_call`` returns the SDK's CallToolResult. The server's stderr goes to ``errlog``.
    """

    def __init__(self, cwd: Path, *, global_args: tuple[str, ...] = (),
                 mcp_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.errlog_path = cwd / "server-stderr.log"
        self.parameters = StdioServerParameters(
            command=sys.executable,
            args=["-m", "gigq_flow", *global_args, "mcp", *mcp_args],
            env=env or server_env(), cwd=str(cwd),
        )
        self.init: InitializeResult | None = None
        self._portal_context: AbstractContextManager[BlockingPortal] | None = None
        self._session_context: AbstractContextManager[ClientSession] | None = None

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[ClientSession]:
        with open(self.errlog_path, "w") as errlog:
            async with stdio_client(self.parameters, errlog=errlog) as (read, write), \
                    ClientSession(read, write, read_timeout_seconds=REQUEST_TIMEOUT) as session:
                self.init = await session.initialize()
                yield session

    def __enter__(self) -> McpServer:
        self._portal_context = start_blocking_portal()
        self.portal = self._portal_context.__enter__()
        self._session_context = self.portal.wrap_async_context_manager(self._session())
        try:
            self.session = self._session_context.__enter__()
        except BaseException:
            self._portal_context.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if self._session_context is not None:
                self._session_context.__exit__(*exc_info)
        finally:
            if self._portal_context is not None:
                self._portal_context.__exit__(*exc_info)

    def tools(self) -> list[Tool]:
        return self.portal.call(self.session.list_tools).tools

    def raw_call(self, tool: str, arguments: Any) -> Any:
        return self.portal.call(self.session.call_tool, tool, arguments)

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = self.raw_call(tool, arguments)
        payload = json.loads(result.content[0].text)
        assert result.structuredContent == payload
        assert result.isError is (not payload["success"]), payload
        return payload

    def stderr(self) -> str:
        return self.errlog_path.read_text(errors="replace")
