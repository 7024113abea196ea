"""Feed rows of negotiations, readiness signals and rendezvous points (see ``feed.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import (
    AgentReady,
    NegotiationCountered,
    NegotiationOpened,
    NegotiationResolved,
    ReadySubscribed,
    RendezvousArrived,
    RendezvousCompleted,
    RendezvousCreated,
    RendezvousJoined,
    RendezvousLeft,
    RendezvousTimedOut,
)

if TYPE_CHECKING:
    from loomkin.core.events import Event
    from loomkin.service import Names

__all__ = [
    "COORDINATION_EVENTS",
    "coordination_actor",
    "is_negotiation",
    "negotiation_summary",
    "readiness_summary",
]

COORDINATION_EVENTS = (
    NegotiationOpened,
    NegotiationCountered,
    NegotiationResolved,
    AgentReady,
    ReadySubscribed,
    RendezvousCreated,
    RendezvousJoined,
    RendezvousArrived,
    RendezvousLeft,
)


def coordination_actor(event: Event) -> str | None:
    """The agent a negotiation, readiness or rendezvous event is about (or by)."""
    if isinstance(event, ReadySubscribed):
        return event.subscriber
    if isinstance(event, RendezvousCreated):
        return event.created_by
    agent_id = getattr(event, "agent_id", None)
    return agent_id if isinstance(agent_id, str) else None


def is_negotiation(event: Event) -> bool:
    """True for the negotiation events (they belong to their task's team)."""
    return isinstance(event, NegotiationOpened | NegotiationCountered | NegotiationResolved)


def _title(task_id: str, names: Names) -> str:
    task = names.task(task_id)
    return task.title if task is not None else task_id


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def negotiation_summary(event: Event, names: Names) -> str | None:
    """Negotiations of assignments (None for other kinds)."""
    match event:
        case NegotiationOpened():
            return (
                f"{event.agent_name} may negotiate {_title(event.task_id, names)!r} "
                f"({event.window_s:.0f} s; assigned by {event.assigner})"
            )
        case NegotiationCountered():
            what = "declines" if event.response == "decline" else f"counters ({event.counter_kind})"
            who = f" → {event.suggested_name}" if event.suggested_name else ""
            return (
                f"{event.agent_name} {what}{who} on {_title(event.task_id, names)!r}: "
                f"{_cut(event.reason, 100)}"
            )
        case NegotiationResolved():
            moved = f" to {event.new_owner_name}" if event.new_owner_name else ""
            return (
                f"negotiation on {_title(event.task_id, names)!r}: {event.outcome}{moved} "
                f"(by {event.decided_by}; {_cut(event.reason, 100)})"
            )
        case _:
            return None


def readiness_summary(event: Event, _names: Names) -> str | None:
    """Readiness signals and rendezvous points (None for other kinds)."""
    match event:
        case AgentReady():
            what = f"ready for {event.ready_for!r}" if event.ready_for else "idle and ready"
            return f"{event.agent_name} is {what}" + (f": {event.detail}" if event.detail else "")
        case ReadySubscribed():
            return f"waits for {event.target_kind} {event.target_name or event.target} to be ready"
        case RendezvousCreated():
            return (
                f"rendezvous {event.name!r} opened for {len(event.participants)} "
                f"({event.timeout_s:.0f} s, then {event.action})"
            )
        case RendezvousJoined():
            return f"{event.agent_name} joins rendezvous (by {event.by})"
        case RendezvousArrived():
            return f"{event.agent_name} arrived"
        case RendezvousLeft():
            return f"{event.agent_name} left the rendezvous ({event.reason})"
        case RendezvousCompleted():
            return f"rendezvous {event.name!r} complete: {', '.join(event.arrived)}"
        case RendezvousTimedOut():
            return f"rendezvous {event.name!r} timed out; missing {', '.join(event.missing)}"
        case _:
            return None
