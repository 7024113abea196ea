"""The MCP servers of one session: started together, their tools handed to roles, stopped.

The session owns one :class:`McpManager`. :meth:`McpManager.start` starts every configured
server at once and returns when all of them answer, or stops them all and raises
:class:`~loomkin.errors.McpServerFailed` for the first that could not start (so a session
never opens with a server missing). :meth:`McpManager.toolset` gives a role the tools of one
server (``"mcp:NAME"`` in the role's tools); :meth:`McpManager.states` shows them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from loomkin.errors import ConfigError, McpServerFailed
from loomkin.tools.base import ToolSet
from loomkin.tools.mcp.connection import McpConnection
from loomkin.tools.mcp.spec import MCP_INSTALL_HINT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from loomkin.runtime.supervisor import Supervisor
    from loomkin.tools.mcp.connection import McpServerState
    from loomkin.tools.mcp.spec import McpServerSpec

__all__ = ["McpManager", "McpNames", "McpTools", "require_sdk"]


class McpTools(Protocol):
    """The MCP servers a role can opt into, and their tools."""

    def servers(self) -> tuple[str, ...]:
        """The names of the configured servers."""
        ...

    def toolset(self, server: str) -> ToolSet[object]:
        """The tools of ``server`` (one of :meth:`servers`)."""
        ...


class McpNames:
    """Configured servers before they run: enough to check the roles that name them."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = tuple(names)

    def servers(self) -> tuple[str, ...]:
        return self._names

    def toolset(self, server: str) -> ToolSet[object]:
        return ToolSet()


def require_sdk(server: str) -> None:
    """Check that the ``mcp`` SDK can be imported.

    Raises:
        ConfigError: it is not installed (the message says what to install).
    """
    try:
        import mcp  # noqa: F401 - only whether it imports
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types", "httpx2", "jsonschema"):
            raise
        raise ConfigError(
            f"MCP server {server!r} ([mcp.servers.{server}] in loomkin.toml) needs the MCP SDK, "
            f"which is not installed: {MCP_INSTALL_HINT}"
        ) from None


class McpManager:
    """The MCP servers of one session (see the module docstring).

    Args:
        specs: The configured servers.
        project_root: Where stdio servers run unless they say otherwise.
        supervisor: Owns the servers' connection tasks (restarting them when they die).
        group: A prefix for the tasks' keys, unique per session.
    """

    def __init__(
        self,
        specs: Iterable[McpServerSpec],
        *,
        project_root: Path,
        supervisor: Supervisor,
        group: str,
    ) -> None:
        self._connections = {
            spec.name: McpConnection(
                spec,
                project_root=project_root,
                supervisor=supervisor,
                key=f"mcp:{group}:{spec.name}",
            )
            for spec in specs
        }

    def servers(self) -> tuple[str, ...]:
        return tuple(self._connections)

    def toolset(self, server: str) -> ToolSet[object]:
        return ToolSet(self._connections[server].tools)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds, checking it at each change of a server."""
        while not condition():
            changes = [asyncio.ensure_future(c.changed()) for c in self._connections.values()]
            try:
                await asyncio.wait(changes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for change in changes:
                    change.cancel()
                await asyncio.wait(changes)

    def states(self) -> list[McpServerState]:
        """Each server's state and tools, in configuration order."""
        return [c.state() for c in self._connections.values()]

    async def start(self) -> None:
        """Start every server; all of them run when this returns.

        Raises:
            ConfigError: the ``mcp`` extra is not installed.
            McpServerFailed: a server did not start (the others are stopped again).
        """
        if not self._connections:
            return
        require_sdk(next(iter(self._connections)))
        outcomes = await asyncio.gather(
            *(c.start() for c in self._connections.values()), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            await self.close()
            for failure in failures:
                if not isinstance(failure, McpServerFailed):
                    raise failure
            raise failures[0]

    async def close(self) -> None:
        """Stop every server."""
        await asyncio.gather(*(c.close() for c in self._connections.values()))
