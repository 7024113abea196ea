"""Steering takes effect within one stream chunk (SPEC §4), or after the answer if asked."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.core.chat import AssistantMessage, UserMessage
from loomkin.core.events import AgentStatusChanged, ControlApplied
from loomkin.testing.models import Reply, ScriptedModel

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

LONG = "".join(f"word{i:02d} " for i in range(40))  # 280 characters: 70 chunks of 4


def thinking(event: object) -> bool:
    return isinstance(event, AgentStatusChanged) and event.status == "thinking"


async def test_an_asap_steer_cuts_the_stream_and_asks_again_with_the_guidance(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [Reply(text=LONG), Reply(text="steered answer")], chunk_chars=4, chunk_delay_s=0.05
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", thinking)
    await asyncio.sleep(0.5)  # virtual time: about ten chunks have streamed
    await rig.session.steer("worker", "be brief")
    event = await rig.wait_for("control_applied", lambda e: getattr(e, "action", "") == "steer")
    assert isinstance(event, ControlApplied)
    assert event.latency_ms <= 50.0 + 1e-6  # within one chunk delay
    await lk.wait_idle()
    cut = rig.agent.memory.transcript[1]
    assert isinstance(cut, AssistantMessage)
    assert cut.interrupted
    assert 0 < len(cut.text) < len(LONG)
    second = model.requests[1].messages
    assert second[-1] == UserMessage(text="[User guidance]: be brief", source="guidance")
    assert any(isinstance(m, AssistantMessage) and m.interrupted for m in second)
    final = rig.agent.memory.transcript[-1]
    assert isinstance(final, AssistantMessage)
    assert final.text == "steered answer"


async def test_an_at_boundary_steer_lets_the_answer_finish(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel(
        [Reply(text=LONG), Reply(text="after the boundary")], chunk_chars=4, chunk_delay_s=0.05
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", thinking)
    await asyncio.sleep(0.5)
    await rig.session.steer("worker", "next time, be brief", mode="at_boundary")
    await lk.wait_idle()
    first = rig.agent.memory.transcript[1]
    assert isinstance(first, AssistantMessage)
    assert first.text == LONG
    assert not first.interrupted
    assert model.requests[1].messages[-1] == UserMessage(
        text="[User guidance]: next time, be brief", source="guidance"
    )
