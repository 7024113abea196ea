"""MCP tool servers (SPEC §3.12): ``[mcp.servers.NAME]`` in ``loomkin.toml``, tools ``NAME.tool``.

Specs (:mod:`~loomkin.tools.mcp.spec`) need nothing installed; connecting needs the official
``mcp`` SDK, the ``mcp`` extra (``pip install 'loomkin[mcp]'``), imported only when a
server is started.
"""

from loomkin.tools.mcp.connection import McpConnection, McpServerState, ServerStatus
from loomkin.tools.mcp.manager import McpManager, McpNames, McpTools, require_sdk
from loomkin.tools.mcp.spec import (
    MCP_INSTALL_HINT,
    HttpTransport,
    McpPermission,
    McpServerSpec,
    StdioTransport,
    mcp_rule,
    tool_name,
)
from loomkin.tools.mcp.tool import McpArguments, McpTool

__all__ = [
    "MCP_INSTALL_HINT",
    "HttpTransport",
    "McpArguments",
    "McpConnection",
    "McpManager",
    "McpNames",
    "McpPermission",
    "McpServerSpec",
    "McpServerState",
    "McpTool",
    "McpTools",
    "ServerStatus",
    "StdioTransport",
    "mcp_rule",
    "require_sdk",
    "tool_name",
]
