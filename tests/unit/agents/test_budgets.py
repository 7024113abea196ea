"""Budgets are checked before every model call; a breach pauses the agent and asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents import Budgets, SessionSettings
from loomkin.core.events import BudgetExceeded, MessageSent, ModelCallCompleted
from loomkin.ids import CallId
from loomkin.testing.internals import event_log
from loomkin.testing.models import Call, Reply, ScriptedModel

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin


async def test_token_budget_pauses_the_agent_and_keeps_finished_work(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("file_read", {"path": "README.md"})], input_tokens=600),
            Reply(text="never reached", input_tokens=10),
            Reply(text="done after the raise", input_tokens=10),
        ]
    )
    rig = await make_rig(
        lk,
        project,
        model,
        settings=SessionSettings(bootstrap_orienter=False, budgets=Budgets(agent_tokens=500)),
    )
    concierge = await rig.session.spawn_agent("concierge", "concierge")
    await rig.send("read the README")
    exceeded = await rig.wait_for("budget_exceeded")
    assert isinstance(exceeded, BudgetExceeded)
    assert exceeded.scope == "agent"
    await rig.wait_for("agent_status_changed", lambda e: getattr(e, "status", "") == "paused")
    # The finished tool call is kept, and the model was not called past the budget.
    assert [e.kind for e in await rig.agent_events("tool_call_completed")] == [
        "tool_call_completed"
    ]
    assert len(model.requests) == 1
    # The lead (here the Concierge) is asked, in words.
    asked = [
        e
        for e in await rig.events("message_sent")
        if isinstance(e, MessageSent) and e.to_agent == concierge.agent_id
    ]
    assert asked
    assert "budget" in asked[0].content
    assert "finished work is kept" in asked[0].content
    # Raising the budget and resuming continues the loop from where it stopped.
    await rig.session.set_budgets(Budgets(agent_tokens=10_000))
    await rig.session.resume("worker")
    await rig.wait_for("loop_finished", lambda e: getattr(e, "outcome", "") == "final")
    assert len(model.requests) == 2


async def test_session_cost_budget_counts_every_agent(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(text="ok", input_tokens=100)])
    rig = await make_rig(
        lk,
        project,
        model,
        settings=SessionSettings(bootstrap_orienter=False, budgets=Budgets(session_tokens=50)),
    )
    await event_log(lk).append(  # as if earlier calls had been made
        ModelCallCompleted(
            session_id=rig.session.session_id,
            agent_id=rig.agent.agent_id,
            call_id=CallId("mc_earlier"),
            text="earlier",
            input_tokens=60,
        )
    )
    await rig.send("hello")
    exceeded = await rig.wait_for("budget_exceeded")
    assert isinstance(exceeded, BudgetExceeded)
    assert exceeded.scope == "session"
    assert model.requests == []
