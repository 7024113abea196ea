"""Every control request gets exactly one outcome, and a restart re-queues exactly the rest.

The lane (what the agent acts on) and the memory (what the log says) are checked here; the
end-to-end behaviour across a restart is in ``tests/integration/test_durable_controls.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents.control import ControlCommand, ControlLane, dropped_events, requeue
from loomkin.agents.memory import AgentMemory
from loomkin.core.events import ControlApplied, ControlDropped, ControlRequested
from loomkin.ids import AgentId, RequestId, SessionId

if TYPE_CHECKING:
    from loomkin.core.records import ControlAction

S, A = SessionId("s"), AgentId("a")


def cmd(request_id: str, action: ControlAction, text: str = "") -> ControlCommand:
    return ControlCommand(request_id=request_id, action=action, text=text, requested_at=0.0)


def requested(request_id: str, action: ControlAction, text: str = "") -> ControlRequested:
    return ControlRequested(
        session_id=S, agent_id=A, request_id=RequestId(request_id), action=action, text=text
    )


def applied(request_id: str, action: ControlAction) -> ControlApplied:
    return ControlApplied(
        session_id=S,
        agent_id=A,
        request_id=RequestId(request_id),
        action=action,
        checkpoint="idle",
        latency_ms=0.0,
    )


def test_a_newer_pause_or_resume_supersedes_what_it_replaces() -> None:
    lane = ControlLane()
    lane.add(cmd("p1", "pause"))
    lane.add(cmd("p2", "pause"))
    lane.add(cmd("r1", "resume"))
    lane.add(cmd("c1", "cancel"))
    lane.add(cmd("c2", "cancel"))
    dropped = [(d.command.request_id, d.reason, d.by) for d in lane.take_dropped()]
    assert dropped == [
        ("p1", "superseded", "p2"),
        ("p2", "superseded", "r1"),
        ("c1", "superseded", "c2"),
    ]
    assert lane.take_dropped() == []  # taken once


def test_a_cancel_that_takes_effect_consumes_the_pause_and_steering_beside_it() -> None:
    lane = ControlLane()
    lane.add(cmd("s1", "steer", "left"))
    lane.add(cmd("p1", "pause"))
    lane.add(cmd("c1", "cancel"))
    directive = lane.at("after_tool")
    assert directive is not None
    assert directive.action == "cancel"
    events = dropped_events(lane, S, A)
    assert [(e.request_id, e.reason, e.by) for e in events] == [
        ("p1", "cancelled", "c1"),
        ("s1", "cancelled", "c1"),
    ]
    assert all(isinstance(e, ControlDropped) for e in events)
    assert lane.steers == []
    assert not lane.pending()


def test_memory_keeps_every_request_without_an_outcome_in_order() -> None:
    memory = AgentMemory(agent_id=A)
    for event in (
        requested("p1", "pause"),
        requested("s1", "steer", "go"),
        requested("p2", "pause"),
        requested("i1", "inspect"),  # answered at once: never pending
    ):
        memory.apply(event)
    assert list(memory.pending_controls) == ["p1", "s1", "p2"]
    assert memory.pause_pending()
    memory.apply(requested("r1", "resume"))
    assert not memory.pause_pending()  # a resume after the pauses: none will take effect
    memory.apply(applied("r1", "resume"))
    memory.apply(
        ControlDropped(
            session_id=S,
            agent_id=A,
            request_id=RequestId("p1"),
            action="pause",
            reason="superseded",
            by=RequestId("p2"),
        )
    )
    assert list(memory.pending_controls) == ["s1", "p2"]


def test_a_restart_rebuilds_the_lane_and_its_supersessions() -> None:
    memory = AgentMemory(agent_id=A)
    for event in (
        requested("p1", "pause"),
        requested("s1", "steer", "go"),
        requested("p2", "pause"),
        requested("c1", "cancel"),
    ):
        memory.apply(event)
    lane = ControlLane()
    requeue(lane, memory.controls_to_requeue(), now=5.0)
    assert lane.pause is not None
    assert lane.pause.request_id == "p2"
    assert lane.cancel is not None
    assert lane.cancel.request_id == "c1"
    assert [s.text for s in lane.steers] == ["go"]
    assert [(d.command.request_id, d.by) for d in lane.dropped] == [("p1", "p2")]


def test_an_older_logs_superseded_request_is_dropped_not_revived() -> None:
    # Before ControlDropped existed, a superseded pause simply never got an outcome.
    memory = AgentMemory(agent_id=A)
    for event in (
        requested("p1", "pause"),
        requested("p2", "pause"),
        applied("p2", "pause"),
        requested("r1", "resume"),
        applied("r1", "resume"),
    ):
        memory.apply(event)
    lane = ControlLane()
    requeue(lane, memory.controls_to_requeue(), now=0.0)
    assert not lane.pending()  # the stale pause does not pause the agent again
    events = dropped_events(lane, S, A)
    assert [(e.request_id, e.reason, e.by) for e in events] == [("p1", "superseded", "p2")]
