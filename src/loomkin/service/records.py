"""What the facade hands out: frozen records, never live runtime objects.

The CLI, the web app and embedding code see sessions, agents, teams, tasks, prompts and
budgets as these values, read off the projections at the moment of the call. Holding one
never holds the runtime; changing the runtime goes through the facade's commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from loomkin.agents.agent import AgentSnapshot
from loomkin.agents.desk import PermissionPrompt, PermissionResponder
from loomkin.core.records import AgentStatus, DepKind, TaskStatus
from loomkin.core.taskview import Handoff
from loomkin.ids import TaskId
from loomkin.runtime.eventlog import Subscription

if TYPE_CHECKING:
    from loomkin.core.state import State
    from loomkin.core.tasks import TaskBoard
    from loomkin.core.taskview import TaskView
    from loomkin.tools.mcp import McpServerState

__all__ = [
    "AgentInfo",
    "AgentName",
    "AgentSnapshot",
    "BudgetStatus",
    "DependencyInfo",
    "EventStream",
    "McpServerInfo",
    "McpToolInfo",
    "Names",
    "PendingPermission",
    "PermissionResponder",
    "StoredSession",
    "Summary",
    "TaskInfo",
    "TaskName",
    "TeamInfo",
    "mcp_server_info",
    "task_info",
]

PendingPermission = PermissionPrompt
"""A permission prompt waiting for an answer (what a responder is handed)."""

EventStream = Subscription
"""A session's committed events, as an async iterator (``async with`` closes it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSession:
    """A session as the store records it."""

    session_id: str
    project_root: str
    title: str
    model: str
    status: Literal["active", "ended"]
    open: bool
    """Whether this runtime hosts it now (it can be driven, not only read)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentInfo:
    """One agent as the UI and the CLI show it."""

    agent_id: str
    name: str
    role: str
    team_id: str
    team_name: str
    status: AgentStatus
    task_id: str | None
    current_tool: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    pause_queued: bool = False
    cached_input_tokens: int = 0
    """Of ``input_tokens``, those read from the provider's prompt cache."""
    """A pause was asked and waits for the agent's next checkpoint (or its prompt's answer)."""
    status_reason: str = ""
    """Why it is in its status, when the log says (``budget exceeded: ...`` for a budget pause)."""
    streaming_text: str = ""
    """The end of the answer its model is streaming now ('' between calls; not journaled)."""
    worker: str | None = None
    """The cluster worker its model calls run on (``None``: the session's own process)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamInfo:
    """One team of a session (dissolved ones included)."""

    team_id: str
    name: str
    parent_team_id: str | None
    depth: int
    status: Literal["active", "dissolved"]
    purpose: str
    agent_ids: tuple[str, ...]
    child_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskInfo:
    """One task of a session."""

    task_id: str
    team_id: str
    title: str
    description: str
    status: TaskStatus
    owner: str | None
    """The owner's name."""
    owner_id: str | None
    priority: int
    effective_priority: int
    milestones: tuple[str, ...]
    result: str | None
    handoff: Handoff | None = None
    """What the owner left on completion (actions, files changed, decisions, questions)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DependencyInfo:
    """One dependency edge between two tasks."""

    task_id: str
    depends_on: str
    kind: DepKind
    milestone: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetStatus:
    """What one scope (the session, a team) spent against its limits."""

    scope: Literal["session", "team"]
    team_id: str | None
    name: str
    cost_usd: float
    tokens: int
    limit_usd: float | None
    limit_tokens: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """What a session produced: files, tasks, decisions, tokens and cost."""

    files_changed: tuple[str, ...]
    tasks: dict[str, int]
    """Task count per status."""
    decisions: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    model_calls: int
    replies: tuple[str, ...] = field(default=())
    cached_input_tokens: int = 0
    """Of ``input_tokens``, those read from the providers' prompt caches."""


@dataclass(frozen=True, slots=True, kw_only=True)
class McpToolInfo:
    """One tool of an MCP server."""

    name: str
    """The name agents call it by: ``SERVER.tool``."""
    description: str
    """The server's description of it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServerInfo:
    """One MCP server of a session (or of a project's ``loomkin.toml``)."""

    name: str
    transport: Literal["stdio", "http"]
    target: str
    """The command line (stdio) or URL (http); header values are never shown."""
    permission: Literal["allow", "ask", "deny"]
    roles: tuple[str, ...]
    """Roles given its tools by the server's ``roles`` setting."""
    status: Literal["starting", "running", "restarting", "failed", "stopped"]
    restarts: int
    error: str
    """Why it last failed or stopped ("" when it never did)."""
    tools: tuple[McpToolInfo, ...]


def mcp_server_info(state: McpServerState) -> McpServerInfo:
    """``state`` as a record."""
    return McpServerInfo(
        name=state.name,
        transport=state.kind,
        target=state.target,
        permission=state.permission,
        roles=state.roles,
        status=state.status,
        restarts=state.restarts,
        error=state.error,
        tools=tuple(McpToolInfo(name=n, description=d) for n, d in state.tools),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentName:
    """An agent's name and team, for a line of the feed."""

    name: str
    team_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskName:
    """A task's title and team, for a line of the feed."""

    title: str
    team_id: str


class Names:
    """Name lookups for rendering events: agents and teams of the log, tasks of the board.

    Read-only and current: a lookup reads the projections at the moment it is made.
    """

    __slots__ = ("_board", "_state")

    def __init__(self, state: State, board: TaskBoard) -> None:
        self._state = state
        self._board = board

    def agent(self, agent_id: str) -> AgentName | None:
        """The agent ``agent_id``, if the log knows it."""
        view = self._state.get_agent(agent_id)
        return None if view is None else AgentName(name=view.name, team_id=view.team_id)

    def team_name(self, team_id: str) -> str | None:
        """The name of team ``team_id``, if the log knows it."""
        team = self._state.get_team(team_id)
        return None if team is None else team.name

    def task(self, task_id: str) -> TaskName | None:
        """The task ``task_id``, if it is on the board."""
        view = self._board.get(TaskId(task_id))
        return None if view is None else TaskName(title=view.title, team_id=view.team_id)


def task_info(view: TaskView) -> TaskInfo:
    """``view`` as a record."""
    return TaskInfo(
        task_id=view.task_id,
        team_id=view.team_id,
        title=view.title,
        description=view.description,
        status=view.status,
        owner=view.owner.name if view.owner is not None else None,
        owner_id=view.owner.agent_id if view.owner is not None else None,
        priority=view.priority,
        effective_priority=view.effective_priority,
        milestones=tuple(view.milestones),
        result=view.result,
        handoff=view.handoff,
    )
