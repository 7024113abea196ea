"""Agent lifecycle, the loop journal, controls, permissions and budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import JSON, Event, register
from loomkin.core.records import (
    AgentStatus,
    ControlAction,
    PauseMode,
    PermissionDecision,
    ToolCategory,
)
from loomkin.ids import AgentId, CallId, RequestId, TaskId, TeamId

__all__ = [
    "AgentCrashed",
    "AgentEvent",
    "AgentFailedPermanently",
    "AgentPlaced",
    "AgentRestarted",
    "AgentSpawned",
    "AgentStatusChanged",
    "BudgetExceeded",
    "ControlApplied",
    "ControlDropped",
    "ControlRequested",
    "LoopFinished",
    "ModelCallCompleted",
    "ModelCallFailed",
    "ModelCallStarted",
    "PermissionRequested",
    "PermissionResolved",
    "ToolCallCompleted",
    "ToolCallStarted",
    "TopicSubscribed",
    "TopicUnsubscribed",
    "TranscriptAppended",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent(Event):
    """Base of events about one agent; they go to the agent's own stream."""

    agent_id: AgentId

    def stream(self) -> str:
        return f"agent:{self.agent_id}"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpawned(AgentEvent):
    """An agent was created in a team."""

    kind: Literal["agent_spawned"] = "agent_spawned"
    team_id: TeamId
    name: str
    role: str
    model: str
    spawned_by: AgentId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentPlaced(AgentEvent):
    """The agent's model calls run on ``worker`` from now on (a cluster placed or moved it).

    ``epoch`` is the agent's lease epoch there; calls under an older one are refused.
    """

    kind: Literal["agent_placed"] = "agent_placed"
    worker: str
    epoch: int
    reason: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStatusChanged(AgentEvent):
    """An agent's status changed (SPEC §3.2 lists the statuses)."""

    kind: Literal["agent_status_changed"] = "agent_status_changed"
    status: AgentStatus
    previous: AgentStatus
    reason: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCrashed(AgentEvent):
    """An agent's loop raised; the supervisor decides whether to restart it."""

    kind: Literal["agent_crashed"] = "agent_crashed"
    error: str
    restarts_in_window: int


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRestarted(AgentEvent):
    """The supervisor restarted a crashed agent from its last checkpoint."""

    kind: Literal["agent_restarted"] = "agent_restarted"
    attempt: int


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentFailedPermanently(AgentEvent):
    """An agent crashed more often than its restart policy allows; its task was released."""

    kind: Literal["agent_failed_permanently"] = "agent_failed_permanently"
    error: str
    released_task_id: TaskId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptAppended(AgentEvent):
    """A message was added to the agent's transcript (replayed to rebuild it after a restart)."""

    kind: Literal["transcript_appended"] = "transcript_appended"
    message: dict[str, JSON]
    """A :class:`~loomkin.core.chat.ChatMessage` as JSON (``chat.message_to_json``)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallStarted(AgentEvent):
    """A model call began; ``request`` is the exact provider-neutral request."""

    kind: Literal["model_call_started"] = "model_call_started"
    call_id: CallId
    iteration: int
    model: str
    request: dict[str, JSON]
    task_id: TaskId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallCompleted(AgentEvent):
    """A model call ended with a response (``interrupted`` if an asap pause cut the stream)."""

    kind: Literal["model_call_completed"] = "model_call_completed"
    call_id: CallId
    text: str
    tool_calls: tuple[dict[str, JSON], ...] = ()
    input_tokens: int = 0
    """Every input token of the call, cached or not."""
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    stop_reason: str = ""
    interrupted: bool = False
    cached_input_tokens: int = 0
    """Input tokens read from the provider's prompt cache (part of ``input_tokens``)."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (part of ``input_tokens``)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallFailed(AgentEvent):
    """An attempt of a model call failed; ``will_retry`` says whether it is tried again.

    Every failed attempt is one event (SPEC §3.13: retries are visible): ``attempt`` counts
    the call's failures from 1, ``delay_s`` is the wait before the retry (0 when none
    follows). A call ends with ``ModelCallCompleted`` or a ``ModelCallFailed`` with
    ``will_retry`` false.
    """

    kind: Literal["model_call_failed"] = "model_call_failed"
    call_id: CallId
    error: str
    attempt: int
    will_retry: bool
    delay_s: float = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallStarted(AgentEvent):
    """A tool call began executing (after permission, if it needed one)."""

    kind: Literal["tool_call_started"] = "tool_call_started"
    call_id: CallId
    tool: str
    arguments: dict[str, JSON]
    target: str = ""
    """The resolved path or command the call acts on, when there is one."""
    attempt: int = 1
    """1 for the first run; an idempotent call cut off by a crash is run again on resume as
    attempt 2, 3, ... of the same ``call_id`` (a non-idempotent one is never run again)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallCompleted(AgentEvent):
    """A tool call produced its result (errors included, shown to the model as text)."""

    kind: Literal["tool_call_completed"] = "tool_call_completed"
    call_id: CallId
    tool: str
    result: str
    is_error: bool = False
    duration_ms: float = 0.0
    outcome: Literal["ok", "error", "skipped", "interrupted", "denied"] = "ok"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class LoopFinished(AgentEvent):
    """An agent loop ended; ``outcome`` says how."""

    kind: Literal["loop_finished"] = "loop_finished"
    outcome: Literal["final", "max_iterations", "cancelled", "paused", "error", "budget"]
    text: str = ""
    iterations: int = 0
    task_id: TaskId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ControlRequested(AgentEvent):
    """Someone asked an agent to pause, resume, steer, cancel or be inspected."""

    kind: Literal["control_requested"] = "control_requested"
    request_id: RequestId
    action: ControlAction
    mode: PauseMode = "asap"
    text: str = ""
    force: bool = False
    requested_by: str = "user"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ControlApplied(AgentEvent):
    """A control request took effect at a checkpoint (``latency_ms`` after it was asked)."""

    kind: Literal["control_applied"] = "control_applied"
    request_id: RequestId
    action: ControlAction
    checkpoint: str
    """Where it took effect: ``stream``, ``after_model``, ``after_tool``, ``idle``, ..."""
    latency_ms: float
    snapshot: dict[str, JSON] | None = None
    """For ``inspect``: the agent's state at that moment."""


ControlDropReason = Literal["superseded", "cancelled"]
"""Why a control request ended without taking effect: a newer one of the same kind replaced
it (``superseded``), or a cancel that took effect made it moot (``cancelled``)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ControlDropped(AgentEvent):
    """A control request ended without taking effect (see :data:`ControlDropReason`).

    With :class:`ControlApplied` this is the other outcome a request can have: every
    ``ControlRequested`` gets exactly one of the two, journaled in the same batch as the
    control that replaced or consumed it, so "requested without an outcome" is exactly the
    set of requests a restart must put back on the agent's lane.
    """

    kind: Literal["control_dropped"] = "control_dropped"
    request_id: RequestId
    action: ControlAction
    reason: ControlDropReason
    by: RequestId
    """The request that replaced or consumed it."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionRequested(AgentEvent):
    """A tool call waits for the user's permission."""

    kind: Literal["permission_requested"] = "permission_requested"
    request_id: RequestId
    call_id: CallId
    tool: str
    category: ToolCategory
    arguments: dict[str, JSON]
    target: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionResolved(AgentEvent):
    """A permission prompt was answered (or cancelled by a forced pause)."""

    kind: Literal["permission_resolved"] = "permission_resolved"
    request_id: RequestId
    decision: PermissionDecision
    tool: str
    target: str = ""
    decided_by: str = "user"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetExceeded(AgentEvent):
    """The next model call would exceed a budget; the agent paused and asked."""

    kind: Literal["budget_exceeded"] = "budget_exceeded"
    scope: Literal["agent", "team", "session"]
    limit_usd: float | None = None
    spent_usd: float = 0.0
    limit_tokens: int | None = None
    spent_tokens: int = 0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSubscribed(AgentEvent):
    """The agent subscribed to a named topic of its session (messages sent to it reach it)."""

    kind: Literal["topic_subscribed"] = "topic_subscribed"
    topic: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TopicUnsubscribed(AgentEvent):
    """The agent left a named topic."""

    kind: Literal["topic_unsubscribed"] = "topic_unsubscribed"
    topic: str
