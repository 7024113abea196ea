"""A small recorded log of one session, built from the real event classes."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from loomkin.core.events import (
    AgentCrashed,
    AgentRestarted,
    AgentSpawned,
    Event,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
    RecordedEvent,
    SessionEnded,
    SessionStarted,
    TaskCreated,
    TeamCreated,
    TeamDissolved,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.ids import AgentId, CallId, EventId, SessionId, TaskId, TeamId

if TYPE_CHECKING:
    from collections.abc import Iterator

SESSION_UUID = uuid.UUID("0190f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f")
SESSION = SessionId(f"session_{SESSION_UUID}")
ROOT, SUB = TeamId("team_root"), TeamId("team_sub")
LEAD, CODER, HELPER = AgentId("agent_lead"), AgentId("agent_coder"), AgentId("agent_helper")


class Log:
    """Recorded events with consecutive positions and the times the test gives."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def at(self, t: float, event: Event) -> RecordedEvent:
        recorded = RecordedEvent(
            position=len(self.events) + 1,
            stream=event.stream(),
            stream_version=1,
            event_id=EventId(f"ev{len(self.events) + 1}"),
            recorded_at=t,
            event=event,
        )
        self.events.append(recorded)
        return recorded

    def __iter__(self) -> Iterator[RecordedEvent]:
        return iter(self.events)


def session_log(*, ended: bool = True) -> Log:
    """A lead that retries a model call, spawns a sub-team and a helper; a crash; an end.

    Times (Unix seconds, offset from 1000): see each line.
    """
    log = Log()
    s = SESSION
    log.at(
        1000,
        SessionStarted(
            session_id=s,
            project_root="/p",
            root_team_id=ROOT,
            title="demo",
            model="anthropic:claude-sonnet-4-5",
        ),
    )
    log.at(1000, TeamCreated(session_id=s, team_id=ROOT, name="root"))
    log.at(
        1001,
        AgentSpawned(
            session_id=s,
            agent_id=LEAD,
            team_id=ROOT,
            name="Lead",
            role="lead",
            model="anthropic:claude-sonnet-4-5",
        ),
    )
    log.at(
        1002,
        ModelCallStarted(
            session_id=s,
            agent_id=LEAD,
            call_id=CallId("mc_1"),
            iteration=1,
            model="anthropic:claude-sonnet-4-5",
            request={"messages": []},
            task_id=TaskId("task_1"),
        ),
    )
    log.at(
        1003,
        ModelCallFailed(
            session_id=s,
            agent_id=LEAD,
            call_id=CallId("mc_1"),
            error="HTTP 429 slow down",
            attempt=1,
            will_retry=True,
        ),
    )
    log.at(
        1005,
        ModelCallCompleted(
            session_id=s,
            agent_id=LEAD,
            call_id=CallId("mc_1"),
            text="spawning a team",
            tool_calls=({"call_id": "call_1", "name": "spawn_team", "arguments": "{}"},),
            input_tokens=120,
            output_tokens=30,
            cost_usd=0.01,
            latency_ms=3000.0,
            stop_reason="tool_calls",
        ),
    )
    log.at(
        1005.5,
        ToolCallStarted(
            session_id=s,
            agent_id=LEAD,
            call_id=CallId("call_1"),
            tool="spawn_team",
            arguments={"name": "backend"},
        ),
    )
    log.at(
        1006,
        TeamCreated(
            session_id=s, team_id=SUB, name="backend", parent_team_id=ROOT, depth=1, spawned_by=LEAD
        ),
    )
    log.at(
        1006,
        AgentSpawned(
            session_id=s,
            agent_id=CODER,
            team_id=SUB,
            name="Coder",
            role="coder",
            model="openai:gpt-4.1",
            spawned_by=LEAD,
        ),
    )
    log.at(
        1006.5,
        ToolCallCompleted(
            session_id=s,
            agent_id=LEAD,
            call_id=CallId("call_1"),
            tool="spawn_team",
            result="team backend created",
            duration_ms=1000.0,
        ),
    )
    log.at(
        1007,
        AgentSpawned(
            session_id=s,
            agent_id=HELPER,
            team_id=ROOT,
            name="Helper",
            role="researcher",
            model="openai:gpt-4.1",
            spawned_by=LEAD,
        ),
    )
    log.at(1007, TaskCreated(session_id=s, task_id=TaskId("task_2"), team_id=SUB, title="x"))
    log.at(
        1008,
        ModelCallStarted(
            session_id=s,
            agent_id=CODER,
            call_id=CallId("mc_2"),
            iteration=1,
            model="openai:gpt-4.1",
            request={"messages": []},
        ),
    )
    log.at(
        1010,
        ModelCallCompleted(
            session_id=s,
            agent_id=CODER,
            call_id=CallId("mc_2"),
            text="",
            input_tokens=50,
            output_tokens=10,
            stop_reason="tool_calls",
        ),
    )
    log.at(
        1011,
        ToolCallStarted(
            session_id=s,
            agent_id=CODER,
            call_id=CallId("call_2"),
            tool="write_file",
            arguments={"path": "a.py"},
            target="a.py",
        ),
    )
    log.at(1012, AgentCrashed(session_id=s, agent_id=CODER, error="boom", restarts_in_window=1))
    log.at(1013, AgentRestarted(session_id=s, agent_id=CODER, attempt=1))
    log.at(
        1014,
        ToolCallCompleted(
            session_id=s,
            agent_id=CODER,
            call_id=CallId("call_2"),
            tool="write_file",
            result="interrupted",
            is_error=True,
            outcome="interrupted",
        ),
    )
    log.at(
        1015,
        ModelCallStarted(
            session_id=s,
            agent_id=HELPER,
            call_id=CallId("mc_3"),
            iteration=1,
            model="openai:gpt-4.1",
            request={"messages": []},
        ),
    )
    log.at(1016, TeamDissolved(session_id=s, team_id=SUB, reason="done", dissolved_by=LEAD))
    if ended:
        log.at(1018, SessionEnded(session_id=s, reason="user closed it"))
    return log
