"""Readiness signals and rendezvous points (SPEC §3.8).

``AgentReady`` says an agent became idle (for those who subscribed) or is ready for something
named (``briefed``, ``schema_ready``, …); ``ReadySubscribed`` records who wants to hear of it.
A rendezvous is a named barrier: created with its participants, joined at runtime (across
teams), arrived at; when everyone has arrived its action runs once; a timeout reports who was
missing; a participant that crashes or retires leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import Event, register
from loomkin.ids import AgentId, TaskId, TeamId

__all__ = [
    "AgentReady",
    "ReadySubscribed",
    "RendezvousAction",
    "RendezvousArrived",
    "RendezvousCompleted",
    "RendezvousCreated",
    "RendezvousJoined",
    "RendezvousLeft",
    "RendezvousTimedOut",
]

RendezvousAction = Literal["message", "create_task", "unblock_task"]
ReadyTarget = Literal["agent", "team", "name"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReady(Event):
    """An agent is ready: idle (``ready_for`` empty) or ready for something named."""

    kind: Literal["agent_ready"] = "agent_ready"
    agent_id: AgentId
    agent_name: str
    team_id: TeamId
    ready_for: str = ""
    detail: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ReadySubscribed(Event):
    """``subscriber`` wants a notice when the target (an agent, a team, a name) is ready."""

    kind: Literal["ready_subscribed"] = "ready_subscribed"
    subscription_id: str
    subscriber: AgentId
    target_kind: ReadyTarget
    target: str
    """An agent id, a team id, or a readiness name."""
    target_name: str = ""
    """How the subscriber named it (for the notice)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RendezvousCreated(Event):
    """A named barrier: who must arrive, until when, and what happens when all have."""

    kind: Literal["rendezvous_created"] = "rendezvous_created"
    rendezvous_id: str
    name: str
    team_id: TeamId
    created_by: AgentId | None
    creator_name: str
    participants: tuple[str, ...]
    """Agent ids."""
    timeout_s: float = 300.0
    deadline: float = 0.0
    action: RendezvousAction = "message"
    message: str = ""
    notify: tuple[str, ...] = ()
    """Agent ids the message goes to (default: the participants)."""
    task_title: str = ""
    task_team: TeamId | None = None
    task_id: TaskId | None = None
    """The task to unblock (``unblock_task``)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RendezvousJoined(Event):
    """A participant was added at runtime (possibly from another team)."""

    kind: Literal["rendezvous_joined"] = "rendezvous_joined"
    rendezvous_id: str
    agent_id: AgentId
    agent_name: str
    by: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RendezvousArrived(Event):
    """A participant arrived."""

    kind: Literal["rendezvous_arrived"] = "rendezvous_arrived"
    rendezvous_id: str
    agent_id: AgentId
    agent_name: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RendezvousLeft(Event):
    """A participant was removed (it crashed or retired)."""

    kind: Literal["rendezvous_left"] = "rendezvous_left"
    rendezvous_id: str
    agent_id: AgentId
    agent_name: str
    reason: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RendezvousCompleted(Event):
    """Everyone arrived; the action ran (once)."""

    kind: Literal["rendezvous_completed"] = "rendezvous_completed"
    rendezvous_id: str
    name: str
    arrived: tuple[str, ...] = ()
    """Names of the participants who arrived."""
    task_id: TaskId | None = None
    """The task created or unblocked, if the action was about a task."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RendezvousTimedOut(Event):
    """The timeout passed before everyone arrived."""

    kind: Literal["rendezvous_timed_out"] = "rendezvous_timed_out"
    rendezvous_id: str
    name: str
    missing: tuple[str, ...] = ()
    """Names of the participants who had not arrived."""
