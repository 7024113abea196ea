"""Controls that arrive at awkward moments (found by ``python -m loomkin.bench control``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.core.chat import AssistantMessage, UserMessage
from loomkin.core.events import AgentStatusChanged, ControlApplied, LoopFinished
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import Reply, ScriptedModel

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.events import Event
    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

LONG = "".join(f"word{i:02d} " for i in range(40))  # 70 chunks of 4 characters


def _thinking(event: Event) -> bool:
    return isinstance(event, AgentStatusChanged) and event.status == "thinking"


async def test_a_steer_during_the_final_answer_lands_in_one_more_model_call(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [Reply(text=LONG), Reply(text="steered")], chunk_chars=4, chunk_delay_s=0.05
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", _thinking)
    await asyncio.sleep(0.5)  # virtual: the final answer is streaming
    await rig.session.steer("worker", "be brief")
    await lk.wait_idle()
    assert len(model.requests) == 2
    assert model.requests[1].messages[-1] == UserMessage(
        text="[User guidance]: be brief", source="guidance"
    )
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="steered")
    (applied,) = await rig.agent_events("control_applied")
    assert isinstance(applied, ControlApplied)
    assert applied.action == "steer"
    finished = await rig.agent_events("loop_finished")
    assert [f.outcome for f in finished if isinstance(f, LoopFinished)] == ["final"]


async def test_a_message_sent_right_after_cancelling_a_paused_agent_is_answered(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [Reply(text=LONG), Reply(text="again")], chunk_chars=4, chunk_delay_s=0.05
    )
    rig = await make_rig(lk, project, model)
    await rig.send("talk")
    await rig.wait_for("agent_status_changed", _thinking)
    await rig.session.pause("worker")
    await rig.wait_for("loop_finished")
    await rig.session.cancel("worker")
    await rig.wait_for("control_applied", lambda e: getattr(e, "action", "") == "cancel")
    await rig.send("start over")
    await lk.wait_idle()
    assert len(model.requests) == 2
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="again")


async def test_a_message_arriving_after_close_wakes_no_agent(lk: Loomkin, project: Path) -> None:
    rig = await make_rig(lk, project, ScriptedModel([Reply(text="unused")]))
    await lk.close()
    # The log's last flush may deliver a message to a mailbox after the supervisor stopped;
    # the agent stays asleep instead of raising into the bus (which logged it as an error).
    rig.agent.wake()
    assert session_runtime(rig.session).running() == 0
