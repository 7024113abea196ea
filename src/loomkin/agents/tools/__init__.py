"""Coordination tools of the agents, and the tool catalogue roles pick their tools from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents.tools.comms import COMMS_TOOLS
from loomkin.agents.tools.conflicts import CONFLICT_TOOLS
from loomkin.agents.tools.decisions import DECISION_TOOLS
from loomkin.agents.tools.knowledge import KNOWLEDGE_TOOLS
from loomkin.agents.tools.negotiation import NEGOTIATION_TOOLS
from loomkin.agents.tools.rendezvous import RENDEZVOUS_TOOLS
from loomkin.agents.tools.review import REVIEW_TOOLS
from loomkin.agents.tools.scaling import SCALING_TOOLS
from loomkin.agents.tools.speculation import SPECULATION_TOOLS
from loomkin.agents.tools.tasks import TASK_TOOLS
from loomkin.agents.tools.team import TEAM_TOOLS
from loomkin.agents.tools.toolsearch import TOOLSEARCH_TOOLS
from loomkin.agents.tools.votes import VOTE_TOOLS
from loomkin.errors import ConfigError
from loomkin.tools.base import Tool, ToolSet
from loomkin.tools.builtin import builtin_tools

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.agents.roles import Role
    from loomkin.tools.mcp import McpTools

__all__ = ["CATALOGUE", "COORDINATION_TOOLS", "MCP_PREFIX", "toolset_for"]

COORDINATION_TOOLS: tuple[Tool[AgentContext], ...] = (
    *TASK_TOOLS,
    *COMMS_TOOLS,
    *DECISION_TOOLS,
    *TEAM_TOOLS,
    *CONFLICT_TOOLS,
    *VOTE_TOOLS,
    *KNOWLEDGE_TOOLS,
    *SPECULATION_TOOLS,
    *NEGOTIATION_TOOLS,
    *REVIEW_TOOLS,
    *RENDEZVOUS_TOOLS,
    *SCALING_TOOLS,
    *TOOLSEARCH_TOOLS,
)

CATALOGUE: ToolSet[AgentContext] = ToolSet([*builtin_tools(), *COORDINATION_TOOLS])
"""Every tool an agent can be given, by name."""


MCP_PREFIX = "mcp:"
"""A role's ``"mcp:NAME"`` entry gives it every tool of the MCP server ``NAME``."""


def toolset_for(role: Role, mcp: McpTools | None = None) -> ToolSet[AgentContext]:
    """Return the tools of ``role``, its MCP servers' tools (``"mcp:NAME"``) last.

    Args:
        role: The role.
        mcp: The session's MCP servers (``None``: there are none).

    Raises:
        ConfigError: the role names a tool that does not exist, or an MCP server that is
            not configured.
    """
    servers = [n.removeprefix(MCP_PREFIX) for n in role.tools if n.startswith(MCP_PREFIX)]
    names = [n for n in role.tools if not n.startswith(MCP_PREFIX)]
    unknown = [name for name in names if name not in CATALOGUE]
    if unknown:
        raise ConfigError(
            f"role {role.name!r} lists unknown tools {unknown}; known tools: "
            f"{', '.join(CATALOGUE.names())}, or 'mcp:<server>' for an MCP server's tools"
        )
    configured = mcp.servers() if mcp is not None else ()
    missing = [s for s in servers if s not in configured]
    if missing:
        known = ", ".join(configured) or "none"
        raise ConfigError(
            f"role {role.name!r} lists {', '.join(MCP_PREFIX + s for s in missing)}, but no such "
            f"MCP server is configured ([mcp.servers.<name>] in loomkin.toml; configured: {known})"
        )
    if names and "load_tools" not in names:
        names.append("load_tools")  # shows the schemas of tools a request does not carry
    builtin = CATALOGUE.subset(names)
    if mcp is None or not servers:
        return builtin
    return builtin.union(*(mcp.toolset(s) for s in servers))
