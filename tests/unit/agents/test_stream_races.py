"""Issue #14: controls race the model stream; silent streams fail; urgent messages end batches.

All in virtual time: a model whose first chunk takes 100 s, a provider that sends nothing
(keep-alives only), a retry backoff, a tool batch an urgent message arrives in.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, TypeVar

import pytest

from loomkin.agents import SessionSettings
from loomkin.agents.loop import URGENT_SKIP
from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.events import (
    AgentStatusChanged,
    ControlApplied,
    LoopFinished,
    ModelCallCompleted,
    ModelCallFailed,
    ToolCallCompleted,
)
from loomkin.errors import RateLimited
from loomkin.llm.registry import make_model
from loomkin.llm.retry import RetryingModel, RetryPolicy
from loomkin.testing.models import Call, Fail, Reply, ScriptedModel, Stall
from loomkin.testing.wire import SSE, KeepAlive, StreamReply, WireServer

from .conftest import Gate, make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.events import Event
    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

E = TypeVar("E")


def of(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def thinking(event: Event) -> bool:
    return isinstance(event, AgentStatusChanged) and event.status == "thinking"


SLOW_FIRST_TOKEN = 100.0


@pytest.mark.parametrize("action", ["pause", "cancel"])
async def test_a_pause_or_cancel_lands_before_the_first_chunk(
    lk: Loomkin, project: Path, action: str
) -> None:
    model = ScriptedModel(
        [Reply(text="late answer"), Reply(text="after resume")], latency_s=SLOW_FIRST_TOKEN
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", thinking)
    await asyncio.sleep(5)  # virtual: the model has not sent anything yet
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await (rig.session.pause("worker") if action == "pause" else rig.session.cancel("worker"))
    applied = await rig.wait_for("control_applied", lambda e: getattr(e, "action", "") == action)
    assert isinstance(applied, ControlApplied)
    assert applied.checkpoint == "stream"
    assert applied.latency_ms == 0.0  # not 95 s later, when the first chunk would come
    assert loop.time() == asked
    await lk.wait_idle()
    events = await rig.agent_events()
    (completed,) = of(events, ModelCallCompleted)
    assert completed.interrupted
    assert completed.text == ""
    # Nothing had streamed: the transcript holds no empty assistant message.
    assert rig.agent.memory.transcript == [UserMessage(text=rig.agent.memory.transcript[0].text)]
    assert [f.outcome for f in of(events, LoopFinished)] == [
        "paused" if action == "pause" else "cancelled"
    ]
    if action == "pause":
        await rig.session.resume("worker")
        await lk.wait_idle()
        assert rig.agent.memory.transcript[-1] == AssistantMessage(text="after resume")


async def test_an_asap_steer_lands_before_the_first_chunk(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel(
        [Reply(text="unsteered"), Reply(text="steered")], latency_s=SLOW_FIRST_TOKEN
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", thinking)
    await asyncio.sleep(5)
    await rig.session.steer("worker", "be brief")
    await lk.wait_idle()
    applied = of(await rig.agent_events(), ControlApplied)
    assert [(a.action, a.latency_ms) for a in applied] == [("steer", 0.0)]
    assert model.requests[1].messages[-1] == UserMessage(
        text="[User guidance]: be brief", source="guidance"
    )
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="steered")


async def test_an_at_boundary_pause_does_not_cut_a_slow_stream(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(text="whole answer")], latency_s=SLOW_FIRST_TOKEN)
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", thinking)
    await rig.session.pause("worker", mode="at_boundary")
    await lk.wait_idle()
    (applied,) = of(await rig.agent_events(), ControlApplied)
    assert applied.checkpoint == "after_model"
    assert applied.latency_ms == pytest.approx(SLOW_FIRST_TOKEN * 1000)
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="whole answer")


async def test_a_silent_stream_fails_after_the_idle_timeout_and_is_retried(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel([Stall(), Reply(text="back")])
    settings = SessionSettings(bootstrap_orienter=False, stream_idle_timeout_s=30.0)
    rig = await make_rig(lk, project, model, settings=settings)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await rig.send("talk")
    await lk.wait_idle()
    events = await rig.agent_events()
    (failed,) = of(events, ModelCallFailed)
    assert failed.will_retry
    assert "silent for 30 s" in failed.error
    assert "stream_idle_timeout_s" in failed.error
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="back")
    assert loop.time() - start == pytest.approx(30.0 + failed.delay_s)


async def test_a_stream_silent_for_ever_ends_the_loop_after_the_retries(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel([Stall()] * 4)
    settings = SessionSettings(bootstrap_orienter=False, stream_idle_timeout_s=30.0)
    rig = await make_rig(lk, project, model, settings=settings)
    await rig.send("talk")
    await lk.wait_idle()
    events = await rig.agent_events()
    assert [f.will_retry for f in of(events, ModelCallFailed)] == [True, True, True, False]
    (finished,) = of(events, LoopFinished)
    assert finished.outcome == "error"
    assert rig.agent.memory.status == "idle"
    assert len(model.requests) == 4


async def test_a_pause_during_a_retry_backoff_cancels_the_retry(lk: Loomkin, project: Path) -> None:
    inner = ScriptedModel([Fail(RateLimited("429 slow down")), Reply(text="after resume")])
    model = RetryingModel(
        inner, policy=RetryPolicy(base_delay_s=60.0, max_delay_s=300.0, random=lambda: 0.0)
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    failed = await rig.wait_for("model_call_failed")
    assert isinstance(failed, ModelCallFailed)
    assert (failed.will_retry, failed.delay_s) == (True, 60.0)
    await asyncio.sleep(1)  # virtual: 59 s of backoff left
    await rig.session.pause("worker")
    applied = await rig.wait_for("control_applied")
    assert isinstance(applied, ControlApplied)
    assert (applied.checkpoint, applied.latency_ms) == ("stream", 0.0)
    await asyncio.sleep(600)
    assert len(inner.requests) == 1  # the retry never happened
    assert rig.agent.memory.status == "paused"
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert len(inner.requests) == 2
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="after resume")


async def test_a_pause_during_the_loops_own_backoff_cancels_it(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel(
        [Reply(text="x", fail_after=RuntimeError("cut")), Reply(text="after resume")]
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("model_call_failed")
    await rig.session.pause("worker")
    await rig.wait_for("control_applied")
    await asyncio.sleep(600)
    assert len(model.requests) == 1
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="after resume")


async def test_an_urgent_message_ends_the_tool_batch_then_is_read(
    lk: Loomkin, project: Path
) -> None:
    calls = [
        Call("gate", {"label": "a"}),
        Call("file_read", {"path": "README.md"}),
        Call("file_read", {"path": "app.py"}),
    ]
    model = ScriptedModel([Reply(tool_calls=calls), Reply(text="handled the conflict")])
    rig = await make_rig(lk, project, model)
    gate = Gate()
    gate.install(rig.agent)
    await rig.send("go")
    await rig.wait_for("tool_call_started")
    agent = rig.agent
    await agent.emit(
        agent.ctx.messages.message(
            "file_conflict", "Stop: someone else is editing app.py", to_agent=agent.agent_id
        )
    )
    gate.opened.set()
    await lk.wait_idle()
    results = of(await rig.agent_events(), ToolCallCompleted)
    assert [(r.outcome, r.result) for r in results] == [
        ("ok", "gate a passed"),
        ("skipped", URGENT_SKIP),
        ("skipped", URGENT_SKIP),
    ]
    seen = model.requests[1].messages
    # assistant(calls) → its three results → the urgent message, never between the results.
    assert [type(m).__name__ for m in seen[-5:]] == [
        "AssistantMessage",
        "ToolResultMessage",
        "ToolResultMessage",
        "ToolResultMessage",
        "UserMessage",
    ]
    assert isinstance(seen[-2], ToolResultMessage)
    last = seen[-1]
    assert isinstance(last, UserMessage)
    assert "someone else is editing app.py" in last.text


async def test_keep_alives_only_over_the_openai_sdk_fail_the_call_after_the_idle_timeout(
    lk: Loomkin, project: Path
) -> None:
    answer = (
        SSE(json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": "hello"}}]})),
        SSE(
            json.dumps({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        ),
        SSE("[DONE]"),
    )
    async with WireServer() as server:
        server.reply(StreamReply(parts=(KeepAlive(every_s=5.0),)), StreamReply(parts=answer))
        model = make_model("openai-compatible:m", base_url=f"{server.base_url}/v1")
        settings = SessionSettings(bootstrap_orienter=False, stream_idle_timeout_s=60.0)
        rig = await make_rig(lk, project, model, settings=settings)
        await rig.send("talk")
        await lk.wait_idle()
        await model.inner.aclose()  # type: ignore[attr-defined]
    (failed,) = of(await rig.agent_events(), ModelCallFailed)
    assert failed.will_retry
    assert "silent for 60 s" in failed.error
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="hello")
    assert len(server.requests) == 2
