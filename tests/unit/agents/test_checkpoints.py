"""Issue #4: pause, resume, steer, cancel and inspect at the loop's checkpoints (virtual time)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.events import (
    AgentStatusChanged,
    ControlApplied,
    ControlRequested,
    Event,
    LoopFinished,
    ModelCallCompleted,
    ModelCallStarted,
    PermissionRequested,
    PermissionResolved,
    TaskStatusChanged,
    ToolCallCompleted,
)
from loomkin.testing.internals import live_agent
from loomkin.testing.models import Call, Reply, ScriptedModel

from .conftest import Gate, Rig, make_rig, nth_match

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

LONG = "".join(f"word{i:02d} " for i in range(40))  # 280 characters: 70 chunks of 4


def status_is(status: str) -> object:
    return lambda e: isinstance(e, AgentStatusChanged) and e.status == status


async def applied(rig: Rig, action: str, n: int = 1) -> ControlApplied:
    event = await rig.wait_for(
        "control_applied", nth_match(n, lambda e: getattr(e, "action", None) == action)
    )
    assert isinstance(event, ControlApplied)
    return event


async def paused(rig: Rig, n: int = 1) -> ControlApplied:
    event = await applied(rig, "pause", n)
    await rig.wait_for("agent_status_changed", nth_match(n, status_is("paused")))  # type: ignore[arg-type]
    assert rig.agent.memory.status == "paused"
    return event


async def test_asap_pause_abandons_the_stream_and_keeps_what_streamed(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [Reply(text=LONG), Reply(text="resumed")], chunk_chars=4, chunk_delay_s=0.05
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", status_is("thinking"))  # type: ignore[arg-type]
    await asyncio.sleep(0.5)  # virtual: about ten chunks have streamed
    loop = asyncio.get_running_loop()
    asked_at = loop.time()
    await rig.session.pause("worker")
    event = await paused(rig)
    assert event.checkpoint == "stream"
    assert event.latency_ms <= 50.0 + 1e-6  # within one chunk delay
    assert loop.time() - asked_at <= 0.05 + 1e-9
    last = rig.agent.memory.transcript[-1]
    assert isinstance(last, AssistantMessage)
    assert last.interrupted
    assert 0 < len(last.text) < len(LONG)
    assert LONG.startswith(last.text)
    (completed,) = await rig.agent_events("model_call_completed")
    assert isinstance(completed, ModelCallCompleted)
    assert completed.interrupted
    assert completed.text == last.text
    finished = await rig.wait_for("loop_finished")
    assert getattr(finished, "outcome", None) == "paused"
    # Nothing streams while paused: no further model call, however long we wait.
    await asyncio.sleep(60)
    assert len(model.requests) == 1
    assert rig.agent.memory.status == "paused"
    # On resume the model sees the interrupted text and is called again.
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert len(model.requests) == 2
    seen = model.requests[1].messages
    assert isinstance(seen[-1], AssistantMessage)
    assert seen[-1].text == last.text
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="resumed")


async def test_at_boundary_pause_waits_for_the_response_and_skips_planned_calls(
    lk: Loomkin, project: Path
) -> None:
    calls = [Call("file_read", {"path": "README.md"}), Call("file_read", {"path": "app.py"})]
    model = ScriptedModel(
        [Reply(text=LONG, tool_calls=calls), Reply(text="all read")],
        chunk_chars=4,
        chunk_delay_s=0.05,
    )
    rig = await make_rig(lk, project, model)
    await rig.send("read both")
    await rig.wait_for("agent_status_changed", status_is("thinking"))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    await rig.session.pause("worker", mode="at_boundary")
    event = await paused(rig)
    assert event.checkpoint == "after_model"
    (completed,) = await rig.agent_events("model_call_completed")
    assert isinstance(completed, ModelCallCompleted)
    assert not completed.interrupted
    assert completed.text == LONG  # the stream was not cut
    results = await rig.agent_events("tool_call_completed")
    assert [(getattr(r, "outcome", ""), getattr(r, "result", "")) for r in results] == [
        ("skipped", "skipped: paused by user"),
        ("skipped", "skipped: paused by user"),
    ]
    assert not await rig.agent_events("tool_call_started")
    await rig.session.resume("worker")
    await lk.wait_idle()
    # After resume the model sees exactly what ran: both calls, both skipped, nothing else.
    after = model.requests[1].messages
    assistant, first, second = after[-3:]
    assert isinstance(assistant, AssistantMessage)
    assert [c.name for c in assistant.tool_calls] == ["file_read", "file_read"]
    assert isinstance(first, ToolResultMessage)
    assert isinstance(second, ToolResultMessage)
    assert [first.call_id, second.call_id] == [c.call_id for c in assistant.tool_calls]
    assert first.content == second.content == "skipped: paused by user"
    assert first.is_error


async def test_a_running_tool_is_never_cut_and_the_pause_applies_after_it(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("gate", {"label": "a"}), Call("gate", {"label": "b"})]),
            Reply(text="done"),
        ]
    )
    rig = await make_rig(lk, project, model)
    gate = Gate()
    gate.install(rig.agent)
    await rig.send("go")
    await rig.wait_for("agent_status_changed", status_is("executing_tool"))  # type: ignore[arg-type]
    await rig.session.pause("worker")  # asap, but a tool is running
    await asyncio.sleep(30)
    assert rig.agent.memory.status == "executing_tool"
    assert not await rig.agent_events("control_applied")
    gate.opened.set()
    event = await paused(rig)
    assert event.checkpoint == "after_tool"
    assert event.latency_ms == pytest.approx(30_000.0)
    assert gate.runs == ["a"]
    results = list(await rig.agent_events("tool_call_completed"))
    assert [getattr(r, "result", "") for r in results] == [
        "gate a passed",
        "skipped: paused by user",
    ]
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert gate.runs == ["a"]  # the skipped call is not run on resume either
    tail = model.requests[1].messages[-2:]
    assert [getattr(m, "content", "") for m in tail] == ["gate a passed", "skipped: paused by user"]


async def test_resume_continues_from_the_checkpoint_with_the_same_transcript(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("file_read", {"path": "README.md"})]),
            Reply(tool_calls=[Call("file_read", {"path": "app.py"})]),
            Reply(text="done"),
        ]
    )
    rig = await make_rig(lk, project, model)
    gate = Gate()
    gate.install(rig.agent)
    await rig.send("go")
    await rig.wait_for("model_call_completed")
    await rig.session.pause("worker", mode="at_boundary")
    await rig.wait_for("loop_finished")
    before = list(rig.agent.memory.transcript)
    snapshot = await rig.session.inspect("worker")
    assert snapshot.status == "paused"
    assert snapshot.iteration >= 1
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert rig.agent.memory.transcript[: len(before)] == before
    started = list(await rig.agent_events("model_call_started"))
    iterations = [e.iteration for e in started if isinstance(e, ModelCallStarted)]
    assert iterations == list(range(1, len(iterations) + 1))  # continues, never restarts
    finished = [e for e in await rig.agent_events("loop_finished") if isinstance(e, LoopFinished)]
    assert [f.outcome for f in finished] == ["paused", "final"]
    assert finished[-1].iterations == 3
    read = list(await rig.agent_events("tool_call_started"))
    assert len(read) == len({getattr(e, "call_id", "") for e in read})


async def test_steer_lands_in_the_very_next_model_request(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(tool_calls=[Call("gate")]), Reply(text="steered")])
    rig = await make_rig(lk, project, model)
    gate = Gate()
    gate.install(rig.agent)
    await rig.send("go")
    await rig.wait_for("agent_status_changed", status_is("executing_tool"))  # type: ignore[arg-type]
    await rig.session.steer("worker", "use tabs, not spaces")
    gate.opened.set()
    await lk.wait_idle()
    last = model.requests[1].messages[-1]
    assert last == UserMessage(text="[User guidance]: use tabs, not spaces", source="guidance")
    event = await applied(rig, "steer")
    assert event.checkpoint == "before_model"


async def test_steer_while_paused_lands_after_resume(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(text=LONG), Reply(text="ok")], chunk_chars=4, chunk_delay_s=0.05)
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", status_is("thinking"))  # type: ignore[arg-type]
    await rig.session.pause("worker")
    await paused(rig)
    await rig.session.steer("worker", "be brief")
    await asyncio.sleep(10)
    assert len(model.requests) == 1  # a steer does not wake a paused agent
    assert not [
        e for e in await rig.agent_events("control_applied") if getattr(e, "action", "") == "steer"
    ]
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert model.requests[1].messages[-1] == UserMessage(
        text="[User guidance]: be brief", source="guidance"
    )
    resume = await applied(rig, "resume")
    assert resume.checkpoint == "idle"
    assert resume.latency_ms == 0.0


async def test_cancel_ends_the_task_with_its_partial_result_and_the_agent_goes_idle(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel([Reply(text=LONG)], chunk_chars=4, chunk_delay_s=0.05)
    rig = await make_rig(lk, project, model)
    task_id = await rig.session.create_task("Write", assign_to="worker")
    await rig.wait_for("agent_status_changed", status_is("thinking"))  # type: ignore[arg-type]
    await asyncio.sleep(0.5)
    await rig.session.cancel("worker")
    event = await applied(rig, "cancel")
    assert event.checkpoint == "stream"
    await lk.wait_idle()
    assert rig.session.task(task_id).status == "cancelled"
    changes = [
        e for e in await rig.events("task_status_changed") if isinstance(e, TaskStatusChanged)
    ]
    cancelled = [c for c in changes if c.status == "cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0].result
    assert LONG.startswith(cancelled[0].result or "")
    assert rig.agent.memory.status == "idle"
    assert rig.agent.memory.task_id is None
    finished = [e for e in await rig.agent_events("loop_finished") if isinstance(e, LoopFinished)]
    assert [f.outcome for f in finished] == ["cancelled"]
    assert len(model.requests) == 1


async def test_inspect_returns_a_snapshot_while_a_tool_runs(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(text="checking", tool_calls=[Call("gate")]), Reply(text="ok")])
    rig = await make_rig(lk, project, model)
    gate = Gate()
    gate.install(rig.agent)
    task_id = await rig.session.create_task("Inspect me", assign_to="worker")
    await rig.wait_for("agent_status_changed", status_is("executing_tool"))  # type: ignore[arg-type]
    snapshot = await rig.session.inspect("worker")
    assert snapshot.status == "executing_tool"
    assert snapshot.step == "tool_call"
    assert snapshot.current_tool == "gate"
    assert snapshot.task_id == task_id
    assert snapshot.iteration == 1
    assert snapshot.input_tokens > 0
    assert snapshot.output_tokens > 0
    assert [m["kind"] for m in snapshot.messages] == ["user", "assistant"]
    requested = await rig.agent_events("control_requested")
    event = await applied(rig, "inspect")
    assert [getattr(e, "action", "") for e in requested] == ["inspect"]
    assert event.snapshot is not None
    assert event.snapshot["current_tool"] == "gate"
    assert "messages" not in event.snapshot
    gate.opened.set()
    await lk.wait_idle()


async def test_pause_during_a_permission_prompt_is_queued_until_it_is_answered(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("file_write", {"path": "a.txt", "content": "a"}), Call("gate")]),
            Reply(text="done"),
        ]
    )
    rig = await make_rig(lk, project, model)
    gate = Gate()
    gate.install(rig.agent)
    await rig.send("write")
    prompt = await rig.wait_for("permission_requested")
    assert isinstance(prompt, PermissionRequested)
    await rig.session.pause("worker")
    await asyncio.sleep(30)
    assert rig.agent.memory.status == "waiting_permission"
    await rig.session.answer_permission(prompt.request_id, "allow_once")
    event = await paused(rig)
    assert event.checkpoint == "after_tool"
    assert (project / "a.txt").read_text() == "a"
    results = await rig.agent_events("tool_call_completed")
    assert [getattr(r, "outcome", "") for r in results] == ["ok", "skipped"]
    assert gate.runs == []


async def test_forced_pause_cancels_the_permission_prompt(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[Call("file_write", {"path": "a.txt", "content": "a"})]), Reply(text="k")]
    )
    rig = await make_rig(lk, project, model)
    await rig.send("write")
    prompt = await rig.wait_for("permission_requested")
    assert isinstance(prompt, PermissionRequested)
    await rig.session.pause("worker", force=True)
    event = await paused(rig)
    assert event.latency_ms == 0.0
    assert not (project / "a.txt").exists()
    (result,) = await rig.agent_events("tool_call_completed")
    assert isinstance(result, ToolCallCompleted)
    assert result.result == "skipped: paused by user (the permission prompt was cancelled)"
    (resolved,) = await rig.agent_events("permission_resolved")
    assert isinstance(resolved, PermissionResolved)
    assert resolved.request_id == prompt.request_id
    assert rig.session.pending_permissions() == []
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert getattr(model.requests[1].messages[-1], "content", "") == result.result


async def test_the_orienters_auto_initiated_scan_can_be_paused(lk: Loomkin, project: Path) -> None:
    orienter = ScriptedModel(
        [Reply(text=LONG, tool_calls=[Call("directory_list", {"path": "."})]), Reply(text="ok")],
        chunk_chars=4,
        chunk_delay_s=0.05,
    )
    concierge = ScriptedModel([Reply(text="Hello!")] * 3)
    session = await lk.open_session(
        project,
        model_factory=lambda role, _name: orienter if role.name == "orienter" else concierge,
        settings=SessionSettings(),
    )
    await session.send("hello")
    rig = Rig(lk=lk, session=session, agent=live_agent(session, "orienter"), model=orienter)
    await rig.wait_for(
        "agent_status_changed",
        lambda e: (
            isinstance(e, AgentStatusChanged)
            and e.agent_id == rig.agent.agent_id
            and e.status == "thinking"
        ),
    )
    await session.pause("orienter")
    event = await paused(rig)
    assert event.checkpoint == "stream"
    await lk.wait_idle()
    assert session.agent("orienter").status == "paused"
    assert not await rig.agent_events("tool_call_started")
    await session.resume("orienter")
    await lk.wait_idle()
    assert len(orienter.requests) == 2


async def test_every_control_action_is_journaled_requested_then_applied(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel([Reply(text=LONG), Reply(text="two")], chunk_chars=4, chunk_delay_s=0.05)
    rig = await make_rig(lk, project, model)
    await rig.send("go")
    await rig.wait_for("agent_status_changed", status_is("thinking"))  # type: ignore[arg-type]
    await rig.session.pause("worker")
    await paused(rig)
    await rig.session.steer("worker", "hint")
    await rig.session.inspect("worker")
    await rig.session.resume("worker")
    await lk.wait_idle()
    await rig.session.cancel("worker")
    await applied(rig, "cancel")
    requested: list[Event] = await rig.agent_events("control_requested")
    done = {
        e.request_id: e
        for e in await rig.agent_events("control_applied")
        if isinstance(e, ControlApplied)
    }
    actions = []
    for event in requested:
        assert isinstance(event, ControlRequested)
        actions.append(event.action)
        assert event.request_id in done, f"{event.action} was never applied"
        assert done[event.request_id].action == event.action
        assert done[event.request_id].latency_ms >= 0.0
    assert actions == ["pause", "steer", "inspect", "resume", "cancel"]
