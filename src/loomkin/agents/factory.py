"""Agents are built from their ``AgentSpawned`` events, live and on replay alike.

:class:`AgentFactory` is the projection that turns each ``AgentSpawned`` event into an
:class:`~loomkin.agents.agent.Agent` (its role, model, tools and system prompt) and adds it to
the directory. A replay after a restart goes through the same path, so live and restored
agents are built the same way. :func:`checked_role` builds what the projection will build
*before* the event is appended, so a bad role (an unknown tool in ``loomkin.toml``) is
a clear error then, never an agent missing after its event is in the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from loomkin.agents.agent import Agent
from loomkin.agents.memory import AgentMemory
from loomkin.agents.roles import Role, resolve_role
from loomkin.agents.toolsets import lean_tools
from loomkin.core.events import AgentSpawned

if TYPE_CHECKING:
    from loomkin.agents.agent import Activator
    from loomkin.agents.context import AgentContext
    from loomkin.agents.directory import AgentDirectory
    from loomkin.core.events import RecordedEvent
    from loomkin.llm.model import Model
    from loomkin.tools.base import ToolSet

__all__ = ["AgentFactory", "ModelFactory", "ToolsetFactory", "checked_role"]

ModelFactory = Callable[[Role, str], "Model"]
"""Builds the model an agent uses from its role and name."""
ToolsetFactory = Callable[[Role], "ToolSet[AgentContext]"]
"""The tools of a role (raises ``ConfigError`` for an unknown tool)."""


def checked_role(role: str, custom: Mapping[str, Role], toolsets: ToolsetFactory) -> Role:
    """Resolve ``role`` and build its tools now, as :class:`AgentFactory` will.

    Raises:
        ConfigError: the role names a tool that does not exist.
    """
    resolved = resolve_role(role, custom)
    toolsets(resolved)
    return resolved


class AgentFactory:
    """Builds a session's agents from their events (see the module docstring)."""

    def __init__(
        self,
        *,
        ctx: AgentContext,
        directory: AgentDirectory,
        activator: Activator,
        models: ModelFactory,
        toolsets: ToolsetFactory,
    ) -> None:
        self._ctx = ctx
        self._directory = directory
        self._activator = activator
        self._models = models
        self._toolsets = toolsets

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        event = recorded.event
        if isinstance(event, AgentSpawned) and event.session_id == self._ctx.session_id:
            self._directory.add(self._build(event))

    def caught_up(self) -> None:
        """Nothing to act on."""

    def _build(self, event: AgentSpawned) -> Agent:
        ctx = self._ctx
        role = resolve_role(event.role, ctx.settings.custom_roles)
        memory = AgentMemory(agent_id=event.agent_id)
        memory.apply(event)
        tools = self._toolsets(role)
        lean = lean_tools(role, tools.schemas())
        prompt = role.system_prompt(
            agent_name=event.name,
            team_name=ctx.state.team(event.team_id).name,
            project=str(ctx.project_root),
        )
        listing = lean.prompt_text()
        return Agent(
            ctx=ctx,
            memory=memory,
            role=role,
            model=self._models(role, event.name),
            tools=tools,
            system_prompt=f"{prompt}\n\n{listing}" if listing else prompt,
            activator=self._activator,
            request_tools=lean.schemas,
        )
