"""The fault bench's checks count what they claim to (each "must be 0" can be non-zero)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.bench.faults import Run, Trial, analyse
from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    ControlApplied,
    ControlRequested,
    ModelCallStarted,
    RecordedEvent,
    ToolCallStarted,
)
from loomkin.ids import AgentId, CallId, EventId, RequestId, SessionId, TeamId

if TYPE_CHECKING:
    from loomkin.core.events import Event

S, ANN = SessionId("s"), AgentId("ann-id")


def log(*batches: list[Event]) -> list[RecordedEvent]:
    """Events in batches: the events of one batch share their record time."""
    out: list[RecordedEvent] = []
    for batch, events in enumerate(batches):
        for event in events:
            position = len(out) + 1
            out.append(
                RecordedEvent(
                    position=position,
                    stream=event.stream(),
                    stream_version=position,
                    event_id=EventId(f"e{position}"),
                    recorded_at=1000.0 + batch,
                    event=event,
                )
            )
    return out


SPAWN = AgentSpawned(
    session_id=S, agent_id=ANN, team_id=TeamId("t"), name="ann", role="coder", model="m"
)


def pause(rid: str) -> ControlRequested:
    return ControlRequested(session_id=S, agent_id=ANN, request_id=RequestId(rid), action="pause")


def applied(rid: str, action: str = "pause") -> ControlApplied:
    return ControlApplied(
        session_id=S,
        agent_id=ANN,
        request_id=RequestId(rid),
        action=action,  # type: ignore[arg-type]
        checkpoint="idle",
        latency_ms=0.0,
    )


def status(new: str, previous: str = "idle") -> AgentStatusChanged:
    return AgentStatusChanged(session_id=S, agent_id=ANN, status=new, previous=previous)  # type: ignore[arg-type]


def started(call: str, attempt: int = 1, tool: str = "shell") -> ToolCallStarted:
    return ToolCallStarted(
        session_id=S, agent_id=ANN, call_id=CallId(call), tool=tool, arguments={}, attempt=attempt
    )


def model_call() -> ModelCallStarted:
    return ModelCallStarted(
        session_id=S, agent_id=ANN, call_id=CallId("mc"), iteration=1, model="m", request={}
    )


def trial(events: list[RecordedEvent], *runs: Run) -> dict[str, int]:
    return analyse(Trial(kind="kill", runs=list(runs), log=events, notes={}))


def test_an_acknowledged_control_without_an_outcome_is_lost() -> None:
    run = Run("1", acks=[("pause", "ann", "p1"), ("pause", "ann", "p2")], end="DONE")
    figures = trial(
        log([SPAWN], [pause("p1")], [pause("p2")], [applied("p2"), status("paused")]), run
    )
    assert figures["acknowledged_controls_lost"] == 1


def test_an_agent_that_works_while_paused_or_before_a_pending_pause_is_counted() -> None:
    while_paused = log([SPAWN], [pause("p1")], [applied("p1"), status("paused")], [model_call()])
    assert trial(while_paused, Run("1", end="DONE"))["paused_agents_ran"] == 1
    # Acknowledged before the restart (which replayed up to position 2), applied after the
    # agent already started a call: the pause was not put back on its lane first.
    late = log([SPAWN], [pause("p1")], [started("c1")], [applied("p1"), status("paused")])
    killed = Run("1", acks=[("pause", "ann", "p1")], end="KILLED", events=[(1, "e1"), (2, "e2")])
    restarted = Run("2", replayed=2, epoch=2, end="DONE")
    assert trial(late, killed, restarted)["paused_agents_ran"] == 1
    in_order = log([SPAWN], [pause("p1")], [applied("p1"), status("paused")])
    assert trial(in_order, killed, restarted)["paused_agents_ran"] == 0


def test_a_resume_never_applied_is_lost() -> None:
    events = log([SPAWN], [pause("p1")], [applied("p1"), status("paused")])
    assert trial(events, Run("1", acks=[("resume", "ann", "r1")], end="DONE"))["resumes_lost"] == 1


def test_a_call_started_twice_or_a_side_effect_re_run_is_a_duplicate() -> None:
    twice = log([SPAWN], [started("c1")], [started("c1")])
    assert trial(twice, Run("1", end="DONE"))["duplicate_tool_calls"] == 1
    rerun = log([SPAWN], [started("c1")], [started("c1", attempt=2)])
    assert trial(rerun, Run("1", end="DONE"))["duplicate_tool_calls"] == 1  # a shell call
    safe = log([SPAWN], [started("c1", tool="file_read")], [started("c1", 2, "file_read")])
    figures = trial(safe, Run("1", end="DONE"))
    assert (figures["duplicate_tool_calls"], figures["idempotent_reruns"]) == (0, 1)


def test_a_seen_event_missing_from_the_log_is_lost() -> None:
    run = Run("1", events=[(1, "e1"), (2, "gone")], end="DONE")
    assert trial(log([SPAWN]), run)["lost_events"] == 1


def test_a_pause_applied_without_its_status_in_the_batch_is_half_recorded() -> None:
    split = log([SPAWN], [pause("p1")], [applied("p1")], [status("paused")])
    assert trial(split, Run("1", end="DONE"))["half_recorded_decisions"] == 1


def test_a_writer_committing_after_a_later_epoch_took_over_is_a_second_writer() -> None:
    events = log([SPAWN], [model_call()], [model_call()])
    early = Run("1", epoch=1, replayed=0, events=[(1, "e1"), (3, "e3")], end="LOST")
    late = Run("2", epoch=2, replayed=2, events=[(2, "e2")], end="DONE")
    assert trial(events, early, late)["second_writers_admitted"] == 1
    fenced = Run("1", epoch=1, replayed=0, events=[(1, "e1")], end="LOST")
    assert trial(events, fenced, late)["second_writers_admitted"] == 0
