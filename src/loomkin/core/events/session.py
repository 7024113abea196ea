"""Session and team lifecycle events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import Event, register
from loomkin.ids import AgentId, MessageId, TeamId

__all__ = [
    "AssistantReplied",
    "BudgetsChanged",
    "SessionBootstrapped",
    "SessionEnded",
    "SessionStarted",
    "TeamCreated",
    "TeamDissolved",
    "UserMessagePosted",
]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(Event):
    """A session was opened on a project; its root team exists from now on."""

    kind: Literal["session_started"] = "session_started"
    project_root: str
    """Absolute path of the project directory."""
    root_team_id: TeamId
    title: str = ""
    model: str = ""
    """Default model (``provider:model``) for agents of this session."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionBootstrapped(Event):
    """The Concierge and the Orienter were spawned (on the first user message)."""

    kind: Literal["session_bootstrapped"] = "session_bootstrapped"
    concierge_id: AgentId
    orienter_id: AgentId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessagePosted(Event):
    """The user sent a message (routed to the Concierge unless ``to_agent`` says otherwise)."""

    kind: Literal["user_message_posted"] = "user_message_posted"
    message_id: MessageId
    text: str
    to_agent: AgentId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantReplied(Event):
    """An agent (normally the Concierge) answered the user."""

    kind: Literal["assistant_replied"] = "assistant_replied"
    agent_id: AgentId
    agent_name: str
    text: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded(Event):
    """The session was closed; nothing runs in it any more."""

    kind: Literal["session_ended"] = "session_ended"
    reason: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TeamCreated(Event):
    """A team was created; ``parent_team_id`` is ``None`` for a session's root team."""

    kind: Literal["team_created"] = "team_created"
    team_id: TeamId
    name: str
    parent_team_id: TeamId | None = None
    depth: int = 0
    spawned_by: AgentId | None = None
    purpose: str = ""

    def stream(self) -> str:
        return f"team:{self.team_id}"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TeamDissolved(Event):
    """A team was dissolved (its sub-teams are dissolved first, each with its own event)."""

    kind: Literal["team_dissolved"] = "team_dissolved"
    team_id: TeamId
    reason: str = ""
    dissolved_by: AgentId | None = None

    def stream(self) -> str:
        return f"team:{self.team_id}"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetsChanged(Event):
    """The session's budgets were set (``None``: no limit); agents paused on a budget may resume.

    The budgets of ``loomkin.toml`` apply until the first of these; each replaces them all.
    """

    kind: Literal["budgets_changed"] = "budgets_changed"
    session_usd: float | None = None
    team_usd: float | None = None
    agent_usd: float | None = None
    session_tokens: int | None = None
    team_tokens: int | None = None
    agent_tokens: int | None = None
    changed_by: str = "user"
