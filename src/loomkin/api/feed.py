"""The activity feed: every event of a session turned into one typed, readable row.

How this works and why:

* A row is what a person scans in the feed: a ``type`` (message, tool call, task created,
  permission, pause/steer, ...), who did it (``actor``, ``agent_id``), in which team, a one-line
  ``summary``, and the event's ``payload`` for the expandable details. The row's ``position`` is
  the event's position in the log, so a client that reconnects asks for ``after=<position>`` and
  misses nothing.
* Names come from the facade's :class:`~loomkin.service.Names` lookups (agent, team and task
  names); rows are built from events alone otherwise, so the same function serves catch-up
  reads from the store and the live stream.
* Bulky payloads are trimmed for the feed, never in the log: a model request keeps its
  messages (a steer shows there as ``[User guidance]: ...``) but lists its tools by name, and
  long strings are cut at :data:`MAX_TEXT` characters.
* ``transcript_appended`` events make no row: they repeat what model and tool rows show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.api.feed_coordination import (
    COORDINATION_EVENTS,
    coordination_actor,
    is_negotiation,
    negotiation_summary,
    readiness_summary,
)
from loomkin.api.feed_speculation import SPECULATION_ROW_TYPES, speculation_summary
from loomkin.core.events import (
    JSON,
    AgentEvent,
    AgentPlaced,
    AgentSpawned,
    AgentStatusChanged,
    AssistantReplied,
    CapacityMoved,
    ContextCompacted,
    ControlApplied,
    ControlDropped,
    ControlRequested,
    DecisionLogged,
    DependencyAdded,
    MessageSent,
    MilestoneEmitted,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
    PermissionRequested,
    PermissionResolved,
    QuestionAnswered,
    QuestionAsked,
    ScaleDecided,
    SpeculationDecided,
    SpeculationStarted,
    TaskAssigned,
    TaskClaimed,
    TaskCreated,
    TaskEvent,
    TaskStatusChanged,
    TeamCreated,
    TeamDissolved,
    TeamScaleSet,
    ToolCallCompleted,
    ToolCallStarted,
    UserMessagePosted,
    encode_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.core.events import Event, RecordedEvent
    from loomkin.service import Names

__all__ = ["HIDDEN_KINDS", "MAX_TEXT", "FeedRow", "feed_row", "row_type", "summarize"]

MAX_TEXT = 4000
"""Longest string kept in a feed payload; longer ones are cut with a marker."""

HIDDEN_KINDS = frozenset({"transcript_appended"})
"""Event kinds that make no feed row."""

_SIMPLE_TYPES: dict[str, str] = {
    "user_message_posted": "chat_user",
    "assistant_replied": "chat_reply",
    "model_call_started": "model_call",
    "model_call_completed": "model_call",
    "model_call_failed": "error",
    "tool_call_started": "tool_call",
    "tool_call_completed": "tool_call",
    "task_created": "task_created",
    "task_assigned": "task_assigned",
    "task_claimed": "task_assigned",
    "dependency_added": "dependency",
    "milestone_emitted": "milestone",
    "partial_result_published": "partial",
    "task_priority_changed": "task",
    "decision_logged": "decision",
    "agent_spawned": "spawn",
    "agent_placed": "placement",
    "team_created": "spawn",
    "team_dissolved": "team",
    "permission_requested": "permission",
    "permission_resolved": "permission",
    "agent_status_changed": "status",
    "agent_crashed": "error",
    "agent_restarted": "status",
    "agent_failed_permanently": "error",
    "budget_exceeded": "escalation",
    "loop_finished": "status",
    "question_asked": "question",
    "question_answered": "answer",
    "question_expired": "question",
    **SPECULATION_ROW_TYPES,
    "negotiation_opened": "negotiation",
    "negotiation_countered": "negotiation",
    "negotiation_resolved": "negotiation",
    "agent_ready": "ready",
    "ready_subscribed": "ready",
    "rendezvous_created": "rendezvous",
    "rendezvous_joined": "rendezvous",
    "rendezvous_arrived": "rendezvous",
    "rendezvous_left": "rendezvous",
    "rendezvous_completed": "rendezvous",
    "rendezvous_timed_out": "rendezvous",
    "scale_decided": "scale",
    "team_scale_set": "scale",
    "capacity_moved": "scale",
    "context_compacted": "context",
}
_TASK_STATUS_TYPES = {
    "in_progress": "task_started",
    "partially_complete": "partial",  # still working, partial output published
    "completed": "task_completed",
    "failed": "task_failed",
    "pending_speculative": "speculation",
    "completed_tentative": "speculation",
    "discarded_tentative": "speculation",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedRow:
    """One row of the activity feed."""

    position: int
    """The event's position in the log (the SSE ``id``)."""
    kind: str
    """The event kind (``model_call_started``, ...)."""
    type: str
    """The row type the feed shows and filters on (``tool_call``, ``task_created``, ...)."""
    recorded_at: float
    actor: str
    """Who did it: an agent's name, ``user`` or ``system``."""
    agent_id: str | None
    team_id: str | None
    team: str
    """The team's name (empty when the event belongs to no team)."""
    summary: str
    payload: dict[str, JSON]


def row_type(event: Event) -> str:
    """Return the feed row type of ``event``."""
    if isinstance(event, TaskStatusChanged):
        return _TASK_STATUS_TYPES.get(event.status, "task")
    if isinstance(event, ControlRequested | ControlApplied | ControlDropped):
        return "control"
    if isinstance(event, MessageSent):
        return _message_type(event.msg_type)
    if isinstance(event, ModelCallFailed) and event.will_retry:
        return "retry"  # a failed attempt that will be retried: visible, but not an error
    return _SIMPLE_TYPES.get(event.kind, "event")


def _message_type(msg_type: str) -> str:
    for word, kind in (
        ("conflict", "conflict"),
        ("vote", "vote"),
        ("escalat", "escalation"),
        ("budget", "escalation"),
        ("decision", "decision"),
        ("milestone", "milestone"),
        ("negotiat", "negotiation"),
        ("rendezvous", "rendezvous"),
        ("ready", "ready"),
    ):
        if word in msg_type:
            return kind
    return "message"


def feed_row(recorded: RecordedEvent, names: Names) -> FeedRow | None:
    """Return the feed row of ``recorded`` (``None`` for kinds the feed does not show)."""
    event = recorded.event
    if event.kind in HIDDEN_KINDS:
        return None
    agent_id, actor = _actor(event, names)
    team_id = _team_id(event, names, agent_id)
    team = names.team_name(team_id) if team_id else None
    return FeedRow(
        position=recorded.position,
        kind=event.kind,
        type=row_type(event),
        recorded_at=recorded.recorded_at,
        actor=actor,
        agent_id=agent_id,
        team_id=team_id,
        team=team or "",
        summary=summarize(event, names),
        payload=_payload(event),
    )


def _actor(event: Event, names: Names) -> tuple[str | None, str]:
    agent_id: str | None = None
    if isinstance(event, AgentEvent | AssistantReplied):
        agent_id = event.agent_id
    elif isinstance(event, MessageSent):
        agent_id = event.from_agent
        if agent_id is None:
            return None, event.from_name
    elif isinstance(event, TaskAssigned | TaskClaimed):
        agent_id = event.owner
    elif isinstance(event, COORDINATION_EVENTS):
        agent_id = coordination_actor(event)
    elif isinstance(event, TaskStatusChanged | MilestoneEmitted):
        agent_id = event.by
    elif isinstance(event, TaskCreated):
        agent_id = event.created_by
    elif isinstance(event, SpeculationStarted | SpeculationDecided | DecisionLogged):
        agent_id = event.agent_id
    elif isinstance(event, TeamCreated):
        agent_id = event.spawned_by
    elif isinstance(event, UserMessagePosted):
        return None, "user"
    if agent_id is None:
        return None, "system"
    agent = names.agent(agent_id)
    return agent_id, agent.name if agent is not None else agent_id


def _team_id(event: Event, names: Names, agent_id: str | None) -> str | None:
    if isinstance(
        event,
        TeamCreated | TeamDissolved | TaskCreated | DecisionLogged | ScaleDecided | TeamScaleSet,
    ):
        return event.team_id
    if isinstance(event, CapacityMoved):
        return event.to_team
    if isinstance(event, MessageSent) and event.from_team is not None:
        return event.from_team
    if isinstance(event, TaskEvent) or is_negotiation(event):
        task = names.task(getattr(event, "task_id", ""))
        if task is not None:
            return task.team_id
    agent = names.agent(agent_id) if agent_id else None
    return agent.team_id if agent is not None else None


def summarize(event: Event, names: Names) -> str:
    """Return a one-line description of ``event``."""
    for summarizer in _SUMMARIZERS:
        text = summarizer(event, names)
        if text is not None:
            return text
    return event.kind.replace("_", " ")


def _conversation_summary(event: Event, names: Names) -> str | None:
    """Messages, model calls and tool calls (None for other kinds)."""
    match event:
        case UserMessagePosted():
            return _cut(event.text, 200)
        case AssistantReplied():
            return _cut(event.text, 200)
        case MessageSent():
            return f"{event.msg_type} → {_recipient(event, names)}: {_cut(event.content, 160)}"
        case ModelCallStarted():
            messages = event.request.get("messages")
            count = len(messages) if isinstance(messages, list | tuple) else 0
            return f"model call #{event.iteration} ({event.model}), {count} messages"
        case ModelCallCompleted():
            calls = ", ".join(str(c.get("name", "?")) for c in event.tool_calls if c)
            what = f"calls {calls}" if calls else _cut(event.text, 120) or "(no text)"
            cached = f", {event.cached_input_tokens} cached" if event.cached_input_tokens else ""
            return (
                f"model answered: {what} "
                f"({event.input_tokens}+{event.output_tokens} tokens{cached})"
            )
        case ContextCompacted():
            how = "summarised" if event.summarised else "old tool results elided"
            return (
                f"context compacted ({how}): {event.tokens_before:,} → "
                f"{event.tokens_after:,} tokens of a {event.window_tokens:,} window"
            )
        case ModelCallFailed(will_retry=True):
            return (
                f"model call failed (attempt {event.attempt}), {_retrying(event.delay_s)}: "
                f"{_cut(event.error, 120)}"
            )
        case ModelCallFailed():
            return f"model call failed (attempt {event.attempt}): {_cut(event.error, 140)}"
        case ToolCallStarted():
            return f"{event.tool} {event.target}".strip()
        case ToolCallCompleted():
            return f"{event.tool} → {event.outcome}: {_cut(event.result, 120)}"
        case _:
            return None


def _task_summary(event: Event, names: Names) -> str | None:
    """Tasks, dependencies, milestones and decisions (None for other kinds)."""
    match event:
        case TaskCreated():
            return f"task created: {event.title!r} (p{event.priority})"
        case TaskAssigned():
            return f"task {_task_title(event.task_id, names)!r} assigned to {event.owner_name}"
        case TaskStatusChanged():
            note = f" ({_cut(event.note, 80)})" if event.note else ""
            return f"task {_task_title(event.task_id, names)!r}: {event.status}{note}"
        case DependencyAdded():
            return (
                f"{_task_title(event.task_id, names)!r} depends on "
                f"{_task_title(event.depends_on, names)!r} ({event.dep_kind})"
            )
        case MilestoneEmitted():
            return f"milestone {event.name!r} of {_task_title(event.task_id, names)!r}"
        case DecisionLogged():
            return f"{event.node_type}: {event.title}"
        case _:
            return None


def _agent_summary(event: Event, names: Names) -> str | None:
    """Agents, teams, permissions and control (None for other kinds)."""
    match event:
        case AgentSpawned():
            return f"spawned {event.name} ({event.role})"
        case AgentPlaced():
            why = f" ({event.reason})" if event.reason else ""
            return f"runs its model calls on worker {event.worker}{why}"
        case TeamCreated():
            purpose = f": {event.purpose}" if event.purpose else ""
            return f"team {event.name!r} created{purpose}"
        case PermissionRequested():
            return f"asks permission: {event.tool} {event.target}".strip()
        case PermissionResolved():
            return f"permission {event.decision}: {event.tool} {event.target}".strip()
        case ControlRequested():
            extra = f" ({event.mode})" if event.action == "pause" else ""
            text = f": {_cut(event.text, 120)}" if event.text else ""
            return f"{event.action} requested{extra}{text}"
        case ControlApplied():
            return f"{event.action} applied at {event.checkpoint}"
        case ControlDropped():
            return f"{event.action} dropped ({event.reason})"
        case AgentStatusChanged():
            return f"{event.previous} → {event.status}" + (
                f" ({event.reason})" if event.reason else ""
            )
        case _:
            return None


def _scale_summary(event: Event, names: Names) -> str | None:
    """Adaptive teams: scaling decisions, bounds, claims and moves (None for other kinds)."""
    match event:
        case ScaleDecided(action="spawn"):
            return f"autoscaler spawned {', '.join(event.agents)}: {_cut(event.reason, 200)}"
        case ScaleDecided(action="retire"):
            return f"autoscaler retired {', '.join(event.agents)}: {_cut(event.reason, 200)}"
        case ScaleDecided():
            return f"autoscaler held: {_cut(event.reason, 200)}"
        case TeamScaleSet(pinned=None, min_agents=None, max_agents=None):
            return f"team size bounds cleared by {event.by}"
        case TeamScaleSet(pinned=int() as pin):
            return f"team size pinned at {pin} by {event.by}"
        case TeamScaleSet():
            low, high = event.min_agents or 0, event.max_agents or "default"
            return f"team size bounded to {low}–{high} by {event.by}"
        case TaskClaimed():
            title = _task_title(event.task_id, names)
            before = names.agent(event.previous_owner) if event.previous_owner else None
            frm = f" from {before.name}" if before is not None else ""
            return f"task {title!r} claimed by {event.owner_name}{frm}"
        case CapacityMoved():
            to = names.team_name(event.to_team) or event.to_team
            return f"task {_task_title(event.task_id, names)!r} moved to team {to!r}"
        case _:
            return None


def _question_summary(event: Event, names: Names) -> str | None:
    """Questions asked of the user, and their answers (None for other kinds)."""
    match event:
        case QuestionAsked(to_user=True):
            agent = names.agent(event.asker)
            who = agent.name if agent is not None else event.asker
            return f"{who} asks the user: {_cut(event.question, 180)}"
        case QuestionAnswered(answerer=None):
            return f"the user answered: {_cut(event.answer, 180)}"
    return None


_SUMMARIZERS: tuple[Callable[[Event, Names], str | None], ...] = (
    _conversation_summary,
    _task_summary,
    _agent_summary,
    speculation_summary,
    negotiation_summary,
    readiness_summary,
    _scale_summary,
    _question_summary,
)
"""Tried in order; each covers a group of kinds (one ``match`` for all was too long)."""


def _recipient(event: MessageSent, names: Names) -> str:
    if event.to_agent is not None:
        agent = names.agent(event.to_agent)
        return agent.name if agent is not None else event.to_agent
    if event.to_team is not None:
        return f"team {names.team_name(event.to_team) or event.to_team}"
    return event.topic or "?"


def _task_title(task_id: str, names: Names) -> str:
    task = names.task(task_id)
    return task.title if task is not None else task_id


def _retrying(delay_s: float) -> str:
    """When a failed model call is tried again (at once after an interrupted attempt)."""
    return f"retrying in {delay_s:.1f} s" if delay_s > 0 else "retrying now"


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _payload(event: Event) -> dict[str, JSON]:
    _kind, _version, text = encode_event(event)
    data = json.loads(text)
    if isinstance(event, ModelCallStarted):
        request = data.get("request")
        if isinstance(request, dict) and isinstance(request.get("tools"), list):
            request["tools"] = [t.get("name") for t in request["tools"] if isinstance(t, dict)]
    trimmed = _trim(data)
    assert isinstance(trimmed, dict)
    return trimmed


def _trim(value: JSON) -> JSON:
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return value[:MAX_TEXT] + f"… [{len(value) - MAX_TEXT} more characters]"
        return value
    if isinstance(value, list | tuple):
        return [_trim(v) for v in value]
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    return value
