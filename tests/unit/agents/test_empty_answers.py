"""A weak model's empty answer gets one nudge; a second one ends the loop, recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.chat import UserMessage
from loomkin.core.events import LoopFinished
from loomkin.testing.models import Reply, ScriptedModel

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin


async def test_one_empty_answer_is_nudged_and_the_loop_goes_on(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(text=""), Reply(text="Here is my answer.")])
    rig = await make_rig(lk, project, model)
    await rig.send("say something")
    finished = await rig.wait_for("loop_finished")
    assert isinstance(finished, LoopFinished)
    assert finished.outcome == "final"
    assert finished.text == "Here is my answer."
    nudge = model.requests[1].messages[-1]
    assert isinstance(nudge, UserMessage)
    assert "Your answer was empty" in nudge.text


async def test_two_empty_answers_end_the_loop_with_a_clear_outcome(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel([Reply(text=""), Reply(text="   ")])
    rig = await make_rig(lk, project, model)
    await rig.send("say something")
    finished = await rig.wait_for("loop_finished")
    assert isinstance(finished, LoopFinished)
    assert finished.outcome == "error"
    assert "empty answer twice" in finished.text
    assert len(model.requests) == 2  # no third call: the loop did not spin
