"""Issue #4: checkpoints survive a restart (SQLite store): paused stays paused, nothing re-runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.chat import ToolResultMessage
from loomkin.core.events import (
    AgentStatusChanged,
    ControlApplied,
    LoopFinished,
    ModelCallStarted,
    PermissionRequested,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.service import Loomkin
from loomkin.testing.internals import event_log
from loomkin.testing.models import Call, Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.core.events import Event
    from loomkin.core.records import PermissionDecision
    from loomkin.llm.model import Model
    from loomkin.service import PendingPermission, Session

# No virtual time here: the shell tool runs real processes, whose timeout must be real too.
SETTINGS = SessionSettings(bootstrap_orienter=False)


def only(model: Model) -> object:
    idle = ScriptedModel([], name="scripted:idle")

    def factory(_role: Role, name: str) -> Model:
        return model if name == "worker" else idle

    return factory


def append(line: str) -> Call:
    return Call("shell", {"command": f"echo {line} >> side.txt"})


async def events_of(lk: Loomkin, session: Session) -> list[Event]:
    return [r.event for r in await session.history()]


async def wait_status(lk: Loomkin, session: Session, status: str) -> None:
    async with session.events(after=0) as sub:
        async for recorded in sub:
            event = recorded.event
            if isinstance(event, AgentStatusChanged) and event.status == status:
                return


async def test_a_paused_agent_stays_paused_across_a_restart_and_resumes_without_rerunning(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    url = f"sqlite:///{tmp_path}/s.db"
    first = ScriptedModel([Reply(tool_calls=[append("one")]), Reply(text="never reached")])
    async with await Loomkin.open(url) as lk:
        session = await lk.open_session(project, model_factory=only(first), settings=SETTINGS)  # type: ignore[arg-type]
        await session.spawn_agent("worker", "coder")

        async def approve_then_pause(_prompt: PendingPermission) -> PermissionDecision:
            await session.pause("worker", mode="at_boundary")  # queued behind the prompt
            return "allow_once"

        session.set_permission_responder(approve_then_pause)
        await session.send("append a line", to="worker")
        await wait_status(lk, session, "paused")
        await lk.wait_idle()
        session_id = session.session_id
        assert session.agent("worker").status == "paused"
    assert (project / "side.txt").read_text() == "one\n"
    assert len(first.requests) == 1

    second = ScriptedModel([Reply(text="all done")])
    async with await Loomkin.open(url) as lk:
        session = await lk.resume_session(session_id, model_factory=only(second))  # type: ignore[arg-type]
        await lk.wait_idle()
        assert session.agent("worker").status == "paused"
        assert second.requests == []  # a paused agent is not woken by the restart
        # The paused loop's count so far: the iteration of its last model call.
        (iteration,) = [
            e.iteration for e in await events_of(lk, session) if isinstance(e, ModelCallStarted)
        ]
        await session.resume("worker")
        await lk.wait_idle()
        events = await events_of(lk, session)
    assert (project / "side.txt").read_text() == "one\n"  # the completed call never re-ran
    assert len(second.requests) == 1
    seen = second.requests[0].messages[-1]
    assert isinstance(seen, ToolResultMessage)
    assert seen.content == "(no output)\n[exit code 0]"
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert len(started) == 1
    finished = [e for e in events if isinstance(e, LoopFinished)]
    assert [f.outcome for f in finished] == ["paused", "final"]
    calls = [e.iteration for e in events if isinstance(e, ModelCallStarted)]
    assert calls == [1, iteration + 1]  # the resumed loop continues its count
    applied = [e for e in events if isinstance(e, ControlApplied)]
    assert [(a.action, a.checkpoint) for a in applied] == [
        ("pause", "after_tool"),
        ("resume", "idle"),
    ]


async def test_a_tool_call_started_but_not_completed_is_reported_as_interrupted(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    url = f"sqlite:///{tmp_path}/s.db"
    first = ScriptedModel([Reply(tool_calls=[append("one")])])
    async with await Loomkin.open(url) as lk:
        session = await lk.open_session(project, model_factory=only(first), settings=SETTINGS)  # type: ignore[arg-type]
        worker = await session.spawn_agent("worker", "coder")
        await session.send("append a line", to="worker")
        await wait_status(lk, session, "waiting_permission")
        (prompt,) = [e for e in await events_of(lk, session) if isinstance(e, PermissionRequested)]
        session_id = session.session_id
        # The "crash": the tool call was journaled as started, then the process died.
        await event_log(lk).append(
            ToolCallStarted(
                session_id=session.session_id,
                agent_id=worker.agent_id,
                call_id=prompt.call_id,
                tool="shell",
                arguments=prompt.arguments,
                target=prompt.target,
            )
        )

    second = ScriptedModel([Reply(text="I will check the file first.")])
    async with await Loomkin.open(url) as lk:
        session = await lk.resume_session(session_id, model_factory=only(second))  # type: ignore[arg-type]
        await lk.wait_idle()
        events = await events_of(lk, session)
    assert not (project / "side.txt").exists()  # not silently re-run
    results = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert [(r.call_id, r.outcome, r.is_error) for r in results] == [
        (prompt.call_id, "interrupted", True)
    ]
    assert "interrupted" in results[0].result
    seen = second.requests[0].messages[-1]
    assert isinstance(seen, ToolResultMessage)
    assert seen.call_id == prompt.call_id
    assert seen.content.startswith("interrupted:")
    assert len([e for e in events if isinstance(e, ToolCallStarted)]) == 1
    assert [e.outcome for e in events if isinstance(e, LoopFinished)] == ["final"]
