"""What a configured MCP server is: its name, how to reach it, who may use it (no I/O here).

``[mcp.servers.NAME]`` in ``loomkin.toml`` becomes one :class:`McpServerSpec` (the service
layer validates the file and builds these). Nothing here imports the ``mcp`` SDK, so a
configuration can be checked, listed and shown without the ``mcp`` extra installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from loomkin.errors import ConfigError

__all__ = [
    "MCP_INSTALL_HINT",
    "SERVER_NAME",
    "HttpTransport",
    "McpPermission",
    "McpServerSpec",
    "StdioTransport",
    "mcp_rule",
    "tool_name",
]

MCP_INSTALL_HINT = "pip install 'loomkin[mcp]'"
"""What to install when ``[mcp.servers]`` is used without the SDK."""

SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
"""A server name: lower-case letters, digits, ``-`` and ``_`` (it prefixes its tools' names)."""

McpPermission = Literal["allow", "ask", "deny"]
"""What the permission gate does with a call to one of the server's tools."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StdioTransport:
    """A server Loomkin starts as a child process and talks to over stdin/stdout."""

    command: str
    """The program to run (looked up on ``PATH``)."""
    args: tuple[str, ...] = ()
    """Its arguments."""
    env: tuple[tuple[str, str], ...] = ()
    """Variables set for it, on top of a minimal inherited set (``HOME``, ``PATH``, ``USER``...;
    API keys of the parent process are not passed on unless named here)."""
    cwd: str | None = None
    """Its working directory (``None``: the project root)."""

    def describe(self) -> str:
        """The command line, as a person would type it."""
        return " ".join((self.command, *self.args))


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpTransport:
    """A server already running somewhere, reached over streamable HTTP."""

    url: str
    """Its MCP endpoint, e.g. ``http://127.0.0.1:8000/mcp``."""
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request (an ``Authorization`` header, say)."""

    def describe(self) -> str:
        """The URL (headers are left out: they often hold secrets)."""
        return self.url


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServerSpec:
    """One ``[mcp.servers.NAME]`` entry of ``loomkin.toml``."""

    name: str
    """The server's name: its tools are called ``NAME.tool``."""
    transport: StdioTransport | HttpTransport
    """How to reach it."""
    permission: McpPermission = "ask"
    """``allow``: its tools run without asking; ``ask`` (default): each call asks the user
    (an "allow always" answer covers that tool); ``deny``: every call is refused."""
    roles: tuple[str, ...] = ()
    """Roles (built-in or custom) given every tool of this server, besides the roles that
    list ``"mcp:NAME"`` in their own ``tools``."""
    startup_timeout_s: float = 30.0
    """How long starting (or restarting) the server may take before it counts as failed."""
    call_timeout_s: float = 120.0
    """How long one tool call may take before the model is told it timed out."""
    restart_delay_s: float = 1.0
    """Pause before restarting a server that stopped (grows with each restart in a row)."""

    def __post_init__(self) -> None:
        if not SERVER_NAME.match(self.name):
            raise ConfigError(
                f"MCP server name {self.name!r} must be lower-case letters, digits, '-' or '_' "
                "(it prefixes the names of its tools)"
            )

    @property
    def kind(self) -> Literal["stdio", "http"]:
        """``stdio`` or ``http``."""
        return "stdio" if isinstance(self.transport, StdioTransport) else "http"


def tool_name(server: str, tool: str) -> str:
    """The name agents call a server's tool by: ``SERVER.tool``."""
    return f"{server}.{tool}"


def mcp_rule(server: str) -> str:
    """The permission entry that covers every tool of ``server`` (``mcp:SERVER``)."""
    return f"mcp:{server}"
