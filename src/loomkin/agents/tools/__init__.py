"""Coordination tools of the agents, and the tool catalogue roles pick their tools from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents.tools.comms import COMMS_TOOLS
from loomkin.agents.tools.conflicts import CONFLICT_TOOLS
from loomkin.agents.tools.decisions import DECISION_TOOLS
from loomkin.agents.tools.knowledge import KNOWLEDGE_TOOLS
from loomkin.agents.tools.tasks import TASK_TOOLS
from loomkin.agents.tools.team import TEAM_TOOLS
from loomkin.agents.tools.votes import VOTE_TOOLS
from loomkin.errors import ConfigError
from loomkin.tools.base import Tool, ToolSet
from loomkin.tools.builtin import builtin_tools

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.agents.roles import Role

__all__ = ["CATALOGUE", "COORDINATION_TOOLS", "toolset_for"]

COORDINATION_TOOLS: tuple[Tool[AgentContext], ...] = (
    *TASK_TOOLS,
    *COMMS_TOOLS,
    *DECISION_TOOLS,
    *TEAM_TOOLS,
    *CONFLICT_TOOLS,
    *VOTE_TOOLS,
    *KNOWLEDGE_TOOLS,
)

CATALOGUE: ToolSet[AgentContext] = ToolSet([*builtin_tools(), *COORDINATION_TOOLS])
"""Every tool an agent can be given, by name."""


def toolset_for(role: Role) -> ToolSet[AgentContext]:
    """Return the tools of ``role``; an unknown tool name is a configuration error."""
    unknown = [name for name in role.tools if name not in CATALOGUE]
    if unknown:
        raise ConfigError(
            f"role {role.name!r} lists unknown tools {unknown}; known tools: "
            f"{', '.join(CATALOGUE.names())}"
        )
    return CATALOGUE.subset(role.tools)
