"""``loomkin mcp list``: start a project's MCP servers, list their tools, stop them."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.errors import McpServerFailed
from loomkin.runtime.supervisor import Supervisor
from loomkin.service.records import McpServerInfo, mcp_server_info
from loomkin.tools.mcp import McpManager

if TYPE_CHECKING:
    from loomkin.agents.settings import SessionSettings

__all__ = ["probe_mcp_servers"]


async def probe_mcp_servers(settings: SessionSettings, project: str | Path) -> list[McpServerInfo]:
    """Start each configured MCP server on its own, list its tools, and stop it again.

    A server that does not start is reported (``status="failed"``, with the reason) rather
    than raised, so one broken server does not hide the others.

    Raises:
        ConfigError: the ``mcp`` extra is not installed.
    """
    root = Path(project)
    supervisor = Supervisor()
    managers = [
        McpManager((spec,), project_root=root, supervisor=supervisor, group=f"probe-{n}")
        for n, spec in enumerate(settings.mcp_servers)
    ]
    try:
        return list(await asyncio.gather(*(_probe(m) for m in managers)))
    finally:
        await supervisor.stop()


async def _probe(manager: McpManager) -> McpServerInfo:
    # A server that does not start says why in its state; the other servers are listed.
    with contextlib.suppress(McpServerFailed):
        await manager.start()
    try:
        (state,) = manager.states()
        return mcp_server_info(state)
    finally:
        await manager.close()
