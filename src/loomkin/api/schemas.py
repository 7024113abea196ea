"""Request and response bodies of the HTTP API (pydantic lives here, at the boundary only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "AgentOut",
    "BudgetOut",
    "ControlOut",
    "DependencyOut",
    "ErrorOut",
    "FeedPage",
    "FeedRowOut",
    "InspectOut",
    "MessageIn",
    "MessageOut",
    "PauseIn",
    "PermissionAnswerIn",
    "PermissionOut",
    "QuestionAnswerIn",
    "SessionCreateIn",
    "SessionDetail",
    "SessionOut",
    "SteerIn",
    "SummaryOut",
    "TaskOut",
    "TeamOut",
    "UserQuestionOut",
]

MAX_MESSAGE = 20_000
"""Longest message or steer text accepted (characters)."""


class _In(BaseModel):
    """Base of request bodies: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


MAX_PATH = 4096
"""Longest project path accepted (Linux's PATH_MAX)."""
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
"""No NUL byte or other control character (they are never part of a real name)."""


class SessionCreateIn(_In):
    """Open a session on a project directory under the server's roots (``--allow-root``)."""

    project: str = Field(
        min_length=1,
        max_length=MAX_PATH,
        pattern=_NO_CONTROL,
        description="The project directory on the server: an absolute path under one of the "
        "server's roots (its --project and --allow-root directories).",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        pattern=_NO_CONTROL,
        description="A provider:model spec, e.g. openai:gpt-4.1 (default: the project's "
        "loomkin.toml [model] default, else the server's --model).",
    )
    base_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=_NO_CONTROL,
        description="The model server: only the one the server was started with "
        "(--base-url) is accepted.",
    )
    title: str = Field(default="", max_length=200)


class MessageIn(_In):
    """A message from the user (to the Concierge unless ``to`` names an agent)."""

    text: str = Field(min_length=1, max_length=MAX_MESSAGE)
    to: str | None = Field(default=None, description='An agent: "name" or "team/name".')


class PauseIn(_In):
    """Pause an agent."""

    mode: Literal["asap", "at_boundary"] = "asap"
    force: bool = Field(default=False, description="Also cancel a permission prompt it waits on.")


class SteerIn(_In):
    """Guidance that lands in the agent's very next model call."""

    text: str = Field(min_length=1, max_length=MAX_MESSAGE)
    mode: Literal["asap", "at_boundary"] = Field(
        default="asap",
        description="asap: cut a streaming answer short and ask again with the guidance; "
        "at_boundary: let the answer finish first.",
    )


class PermissionAnswerIn(_In):
    """The user's answer to a permission prompt."""

    decision: Literal["allow_once", "allow_always", "deny"]


class QuestionAnswerIn(_In):
    """The user's answer to a question an agent asked them."""

    text: str = Field(min_length=1, max_length=MAX_MESSAGE, description="The answer.")


class UserQuestionOut(BaseModel):
    """A question an agent asked the user, still open until answered or its deadline."""

    question_id: str
    agent_id: str
    agent: str
    """The asking agent's name."""
    team: str
    question: str
    deadline: float
    """Unix seconds after which it expires unanswered (the agent is then told)."""
    seconds_left: float


class ErrorOut(BaseModel):
    """Every error response: what went wrong, in words."""

    detail: str
    """The problem, in words."""
    errors: list[str] = Field(default_factory=list)
    """For invalid requests: each field and what is wrong with it."""


class SessionOut(BaseModel):
    """A session in the list."""

    session_id: str
    project_root: str
    title: str
    model: str
    status: Literal["active", "ended"]
    open: bool
    """Whether the session is open in this runtime (so it can be driven)."""


class AgentOut(BaseModel):
    """An agent card."""

    agent_id: str
    name: str
    role: str
    team_id: str
    team_name: str
    status: str
    task_id: str | None
    task_title: str | None
    current_tool: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    pause_queued: bool
    """A pause was asked and has not taken effect yet (the agent waits on a prompt)."""
    status_reason: str = ""
    """Why it is in its status (``budget exceeded: ...`` when a budget paused it)."""
    streaming_text: str = ""
    """The end of the answer its model is streaming now ('' between calls)."""
    worker: str | None = None
    """The cluster worker its model calls run on (``null``: the session's own process)."""


class TeamOut(BaseModel):
    """A team in the tree."""

    team_id: str
    name: str
    parent_team_id: str | None
    depth: int
    status: Literal["active", "dissolved"]
    purpose: str
    agent_ids: list[str]
    child_ids: list[str]


class TaskOut(BaseModel):
    """A node of the task graph."""

    task_id: str
    team_id: str
    title: str
    status: str
    owner: str | None
    priority: int
    effective_priority: int
    milestones: list[str]


class DependencyOut(BaseModel):
    """An edge of the task graph: ``task_id`` depends on ``depends_on``."""

    task_id: str
    depends_on: str
    kind: Literal["blocks", "informs", "requires_output"]
    milestone: str | None


class BudgetOut(BaseModel):
    """Spending of the session or one team, against its limits."""

    scope: Literal["session", "team"]
    team_id: str | None
    name: str
    cost_usd: float
    tokens: int
    limit_usd: float | None
    limit_tokens: int | None


class PermissionOut(BaseModel):
    """A permission prompt waiting for the user."""

    request_id: str
    agent_id: str
    agent: str
    tool: str
    category: str
    arguments: dict[str, JsonValue]
    target: str
    """The resolved path or command the call acts on."""
    diff: str = ""
    """For a file write or edit: the unified diff of what it would change."""
    command: str = ""
    """For ``shell``: the command line."""
    always: str = ""
    """What "Allow always" would allow from now on, in words."""


class SessionDetail(BaseModel):
    """Everything the page shows of one session, at one position of the log."""

    session: SessionOut
    position: int
    """The log position this view reflects (at least)."""
    working: int
    """Agents thinking, running a tool or waiting for permission."""
    agents: list[AgentOut]
    teams: list[TeamOut]
    tasks: list[TaskOut]
    dependencies: list[DependencyOut]
    budgets: list[BudgetOut]
    permissions: list[PermissionOut]
    questions: list[UserQuestionOut] = Field(default_factory=list)
    """Questions agents asked the user, still open."""


class MessageOut(BaseModel):
    """The id of a message the user sent."""

    message_id: str


class ControlOut(BaseModel):
    """The id of a control request (its effect shows in the feed)."""

    request_id: str
    agent_id: str
    action: str


class InspectOut(BaseModel):
    """An agent's snapshot: messages, step, tool, task, iteration, usage."""

    agent_id: str
    snapshot: dict[str, JsonValue]


class FeedRowOut(BaseModel):
    """One row of the activity feed."""

    position: int
    kind: str
    type: str
    recorded_at: float
    actor: str
    agent_id: str | None
    team_id: str | None
    team: str
    summary: str
    payload: dict[str, JsonValue]


class FeedPage(BaseModel):
    """Feed rows after a position, oldest first."""

    rows: list[FeedRowOut]
    last_position: int
    """Pass it as ``after`` to continue (the position of the last event read)."""


class SummaryOut(BaseModel):
    """What the session produced so far."""

    files_changed: list[str]
    tasks: dict[str, int]
    decisions: list[str]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    model_calls: int
    cached_input_tokens: int = Field(
        default=0, description="Of input_tokens, those read from a provider's prompt cache."
    )


class McpToolOut(BaseModel):
    """One tool of an MCP server."""

    name: str = Field(description="The name agents call it by: SERVER.tool.")
    description: str


class McpServerOut(BaseModel):
    """One MCP server of the session."""

    name: str
    transport: Literal["stdio", "http"]
    target: str = Field(description="The command line or URL (header values are not shown).")
    permission: Literal["allow", "ask", "deny"]
    roles: list[str]
    status: Literal["starting", "running", "restarting", "failed", "stopped"]
    restarts: int
    error: str = Field(description="Why it last failed or stopped ('' if it never did).")
    tools: list[McpToolOut]
