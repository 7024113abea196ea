"""Every negotiation, readiness and rendezvous event kind makes a typed feed row."""

from __future__ import annotations

from loomkin.api.feed import feed_row, row_type
from loomkin.core.events import (
    AgentReady,
    Event,
    NegotiationCountered,
    NegotiationOpened,
    NegotiationResolved,
    ReadySubscribed,
    RecordedEvent,
    RendezvousArrived,
    RendezvousCompleted,
    RendezvousCreated,
    RendezvousJoined,
    RendezvousLeft,
    RendezvousTimedOut,
    event_kinds,
)
from loomkin.core.state import State
from loomkin.core.tasks import TaskBoard
from loomkin.ids import AgentId, EventId, SessionId, TaskId, TeamId
from loomkin.service import Names

S, A, T, K = SessionId("s"), AgentId("agent_x"), TeamId("team_x"), TaskId("task_x")

EVENTS: list[tuple[Event, str, str]] = [
    (
        NegotiationOpened(
            session_id=S, negotiation_id="n", task_id=K, team_id=T, agent_id=A,
            agent_name="ann", assigner="scheduler", window_s=30.0,
        ),
        "negotiation",
        "ann may negotiate 'task_x' (30 s; assigned by scheduler)",
    ),
    (
        NegotiationCountered(
            session_id=S, negotiation_id="n", task_id=K, agent_id=A, agent_name="ann",
            response="counter", counter_kind="suggest_agent", suggested_name="bob",
            reason="bob knows it",
        ),
        "negotiation",
        "ann counters (suggest_agent) → bob on 'task_x': bob knows it",
    ),
    (
        NegotiationResolved(
            session_id=S, negotiation_id="n", task_id=K, agent_id=A, outcome="reassigned",
            decided_by="policy", new_owner_name="bob", reason="accepted",
        ),
        "negotiation",
        "negotiation on 'task_x': reassigned to bob (by policy; accepted)",
    ),
    (
        AgentReady(session_id=S, agent_id=A, agent_name="ann", team_id=T, ready_for="briefed"),
        "ready",
        "ann is ready for 'briefed'",
    ),
    (
        ReadySubscribed(
            session_id=S, subscription_id="r", subscriber=A, target_kind="name",
            target="briefed", target_name="briefed",
        ),
        "ready",
        "waits for name briefed to be ready",
    ),
    (
        RendezvousCreated(
            session_id=S, rendezvous_id="v", name="release", team_id=T, created_by=A,
            creator_name="ann", participants=("a", "b"), timeout_s=300.0,
        ),
        "rendezvous",
        "rendezvous 'release' opened for 2 (300 s, then message)",
    ),
    (
        RendezvousJoined(session_id=S, rendezvous_id="v", agent_id=A, agent_name="c", by="ann"),
        "rendezvous",
        "c joins rendezvous (by ann)",
    ),
    (
        RendezvousArrived(session_id=S, rendezvous_id="v", agent_id=A, agent_name="ann"),
        "rendezvous",
        "ann arrived",
    ),
    (
        RendezvousLeft(
            session_id=S, rendezvous_id="v", agent_id=A, agent_name="b", reason="it is done"
        ),
        "rendezvous",
        "b left the rendezvous (it is done)",
    ),
    (
        RendezvousCompleted(session_id=S, rendezvous_id="v", name="release", arrived=("a",)),
        "rendezvous",
        "rendezvous 'release' complete: a",
    ),
    (
        RendezvousTimedOut(session_id=S, rendezvous_id="v", name="sync", missing=("b",)),
        "rendezvous",
        "rendezvous 'sync' timed out; missing b",
    ),
]  # fmt: skip


def test_every_new_kind_has_a_typed_row_and_a_summary() -> None:
    names = Names(State(), TaskBoard())
    kinds = {event.kind for event, _type, _summary in EVENTS}
    assert kinds <= event_kinds()
    for position, (event, kind, summary) in enumerate(EVENTS, start=1):
        recorded = RecordedEvent(
            position=position,
            stream="s",
            stream_version=position,
            event_id=EventId(f"e{position}"),
            recorded_at=0.0,
            event=event,
        )
        row = feed_row(recorded, names)
        assert row is not None
        assert (row.type, row.summary) == (kind, summary)
        assert row_type(event) != "event"
