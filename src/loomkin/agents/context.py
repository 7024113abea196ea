"""The typed context of a session's agents and their tools: narrow ports, built once.

How this works and why:

* Every agent of a session and every coordination tool it calls receive the same frozen
  :class:`AgentContext`, the way the built-in file and shell tools receive their small deps.
  It holds *ports*: the log to append to, the clock, the task commands, the permission
  policy and desk, the agent directory (plain :class:`~loomkin.coordination.Member` records,
  never live agents), the team operations, the message factory, the coordination services
  and the session's settings. Nothing in it is the session object itself: a tool cannot
  reach past its ports (STYLE 26).
* Who is calling a tool is the :class:`~loomkin.tools.base.ToolContext` of the call (agent,
  team, task, role, call id); what the tool may use is this context. A tool that needs the
  caller as a record asks ``directory.member(ctx.agent_id)``.
* Ports that the session implements in modules above this one are :class:`~typing.Protocol`
  classes here, so that no module of ``loomkin.agents`` depends on the session (the import
  contracts in ``pyproject.toml`` check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from loomkin.agents.budgets import BudgetBook
from loomkin.agents.decisionlog import DecisionLog
from loomkin.agents.desk import PermissionDesk
from loomkin.agents.questions import QuestionBook
from loomkin.agents.settings import SessionSettings
from loomkin.coordination import (
    ConflictDetector,
    Knowledge,
    MessageFactory,
    VoteBook,
)
from loomkin.coordination.negotiation import NegotiationBook
from loomkin.coordination.readiness import ReadinessBook
from loomkin.coordination.rendezvous import RendezvousBook
from loomkin.coordination.speculation import Speculation
from loomkin.core.comms import comms_refusal
from loomkin.core.scheduling import CapabilityStats
from loomkin.core.state import State
from loomkin.errors import PolicyRefused, ToolError
from loomkin.ids import SessionId, TeamId
from loomkin.llm.pricing import PriceTable
from loomkin.runtime.clock import Clock
from loomkin.runtime.eventlog import EventLog
from loomkin.tasks import TaskService
from loomkin.tools.base import FileAccessLog
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pydantic import BaseModel

    from loomkin.coordination import (
        Member,
    )
    from loomkin.core.events.base import JSON
    from loomkin.core.scheduling import AgentCandidate
    from loomkin.tools.base import Tool, ToolContext, ToolSpec
    from loomkin.tools.builtin import ShellPolicy

__all__ = [
    "LOCAL_TOOLS",
    "AgentContext",
    "Directory",
    "LocalTools",
    "PreWriteHook",
    "TeamPort",
    "ToolRunner",
    "TopicPort",
]


class Directory(Protocol):
    """The agents of the session, as plain records."""

    def member(self, agent_id: str) -> Member | None:
        """The agent ``agent_id`` (``None`` when the session has no such agent)."""
        ...

    def members(self) -> Sequence[Member]:
        """Every agent of the session, in spawn order."""
        ...

    def resolve(self, name: str, team_id: TeamId | None = None) -> Member:
        """An agent by name: ``team/name``, or a name in ``team_id`` (else unique in the session).

        Raises:
            NotFound: no such agent.
            UserError: the name is ambiguous.
        """
        ...

    def lead_of(self, team_id: TeamId) -> Member | None:
        """Who hears about a team's trouble: its lead, else the Concierge."""
        ...

    def candidates(self, team_id: TeamId) -> list[AgentCandidate]:
        """Agents of ``team_id`` the scheduler may give tasks to."""
        ...

    def tool_specs(self, agent_id: str) -> Sequence[ToolSpec]:
        """The tools agent ``agent_id`` may call, as the model is told of them (none if unknown)."""
        ...


class TeamPort(Protocol):
    """Team operations an agent may ask for."""

    async def spawn_team(
        self,
        *,
        name: str,
        parent_team_id: TeamId,
        purpose: str,
        roles: Sequence[tuple[str, str]],
        spawned_by: str | None,
    ) -> tuple[TeamId, list[Member]]:
        """Create a team under ``parent_team_id`` with agents ``(name, role)``, atomically."""
        ...

    async def spawn_agent(
        self, team_id: TeamId, name: str, role: str, *, spawned_by: str | None
    ) -> Member:
        """Add an agent with ``role`` to ``team_id``; the name must be unique in the team."""
        ...

    async def dissolve(self, team_id: TeamId, *, reason: str, by: str | None) -> None:
        """Dissolve ``team_id`` and its sub-teams; their agents stop taking work."""
        ...


class TopicPort(Protocol):
    """Named topics agents follow (their messages reach only the followers)."""

    def topic_key(self, name: str) -> str:
        """The bus topic of the session-wide topic ``name``."""
        ...

    def topics_of(self, agent_id: str) -> list[str]:
        """Names of the topics ``agent_id`` follows."""
        ...


class PreWriteHook(Protocol):
    """Checked right before a write tool runs (the conflict detector's stale-read guard)."""

    async def before_write(
        self, member: Member, tool: str, arguments: Mapping[str, JSON], target: str
    ) -> str | None:
        """The refusal the model reads, or ``None`` to let the write land."""
        ...


class ToolRunner(Protocol):
    """Where a tool call that passed its checks runs (here, or on the agent's worker)."""

    async def run(
        self, tool: Tool[AgentContext], args: BaseModel, call: ToolContext, deps: AgentContext
    ) -> str:
        """Run ``tool`` and return its text for the model.

        Raises:
            ToolError: the call failed; the message is what the model reads.
        """
        ...


class LocalTools:
    """Runs every tool in this process (the embedded default)."""

    async def run(
        self, tool: Tool[AgentContext], args: BaseModel, call: ToolContext, deps: AgentContext
    ) -> str:
        return await tool.run(args, call, deps)


LOCAL_TOOLS = LocalTools()


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentContext:
    """The ports of one session's agents and tools (see the module docstring)."""

    session_id: SessionId
    project_root: Path
    root_team_id: TeamId
    settings: SessionSettings
    """Limits and policies from ``loomkin.toml`` (budgets: see ``budgets``)."""
    log: EventLog
    """Where every change is appended (messages are delivered once committed)."""
    clock: Clock
    state: State
    """Sessions, teams and agents as the log describes them (read only)."""
    tasks: TaskService
    """Task commands (checked under the board's lock) and the board's read views."""
    policy: PermissionPolicy
    permissions: PermissionDesk
    """Open permission prompts and the session's automatic responder."""
    budgets: BudgetBook
    prices: PriceTable
    file_access: FileAccessLog
    """Which files each agent read (the write tools warn about stale or blind writes)."""
    messages: MessageFactory
    directory: Directory
    teams: TeamPort
    topics: TopicPort
    questions: QuestionBook
    decisions: DecisionLog
    votes: VoteBook
    negotiations: NegotiationBook
    readiness: ReadinessBook
    """Readiness signals and who subscribed to them."""
    rendezvous: RendezvousBook
    """Named barriers (create, join, arrive)."""
    """Open negotiations on assignments (accept, decline, counter, resolve)."""
    knowledge: Knowledge
    conflicts: ConflictDetector
    pre_write: PreWriteHook
    scheduler_stats: CapabilityStats
    """Per-agent success counts by task type (``team_smart_assign`` ranks by them)."""
    speculation: Speculation
    """Speculative tasks: their workspaces (tools of a speculating agent work there)."""
    tool_runner: ToolRunner = LOCAL_TOOLS
    """Where tool calls run once checked (a cluster runs the shell on the agent's worker)."""

    @property
    def shell_policy(self) -> ShellPolicy:
        """The shell's allow/deny lists and limits (what the shell tool's deps must give)."""
        return self.settings.shell_policy

    def check_comms(self, from_team: str, to_team: str) -> None:
        """Refuse a message between teams the communication policy keeps apart.

        Raises:
            PolicyRefused: the policy refuses it; the message says how to allow it.
        """
        refusal = comms_refusal(
            self.state,
            from_team,
            to_team,
            policy=self.settings.comms_policy,
            allow=self.settings.comms_allow,
        )
        if refusal is not None:
            raise PolicyRefused(refusal)

    def resolve_team(self, name_or_id: str) -> TeamId:
        """The id of a team of the session given its name or id (``NotFound`` if none)."""
        return self.state.resolve_team(self.session_id, name_or_id).team_id

    def caller(self, call: ToolContext) -> Member:
        """The agent making ``call``, as a record."""
        member = self.directory.member(call.agent_id)
        if member is None:
            raise ToolError(f"agent {call.agent_name!r} is not part of this session")
        return member

    def qualified_name(self, member: Member) -> str:
        """``team/name`` of an agent, as other agents address it."""
        return f"{self.state.team(member.team_id).name}/{member.name}"
