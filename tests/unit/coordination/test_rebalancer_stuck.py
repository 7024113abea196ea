"""A stuck agent in a real session: nudged twice, then escalated lead → concierge → user."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.coordination import RebalancerSettings
from loomkin.core.events import MessageSent, RebalancerActed
from loomkin.service import Loomkin
from loomkin.testing.models import FunctionModel, Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model


@pytest.mark.looptime
async def test_stuck_agent_is_nudged_then_escalated(tmp_path: Path) -> None:
    hang = FunctionModel(lambda _r: Reply(text="done"), latency_s=100_000.0)

    def factory(_role: Role, name: str) -> Model:
        return hang if name == "stuck" else ScriptedModel([], name="scripted:idle")

    settings = SessionSettings(
        bootstrap_orienter=False,
        rebalancer=RebalancerSettings(),
        stream_idle_timeout_s=1_000_000.0,  # stuck in its model call, not failing it
    )
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(tmp_path, model_factory=factory, settings=settings)
        await session.spawn_agent("lead", "lead")
        stuck = await session.spawn_agent("stuck", "coder")
        started = asyncio.get_running_loop().time()
        await session.send("work", to="stuck")
        acts: list[RebalancerActed] = []
        async with session.events(after=0) as sub:
            async for recorded in sub:
                if isinstance(recorded.event, RebalancerActed):
                    acts.append(recorded.event)
                    if recorded.event.escalated_to == "user":
                        break
        elapsed = asyncio.get_running_loop().time() - started
        events = [r.event for r in await session.history()]
    assert [(a.action, a.escalated_to) for a in acts] == [
        ("nudge", None),
        ("nudge", None),
        ("escalate", "lead"),  # no idle coder to reassign to
        ("escalate", "concierge"),
        ("escalate", "user"),
    ]
    assert all(a.problem == "stuck" and a.agent_id == stuck.agent_id for a in acts)
    assert 5 * 300 < elapsed < 5 * 300 + 5 * 60 + 60  # default thresholds, 60 s checks
    to_lead = [e for e in events if isinstance(e, MessageSent) and e.msg_type == "escalation"]
    assert to_lead
    assert "stuck" in to_lead[0].content
