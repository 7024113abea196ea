"""The speculation routes: start a task ahead of its blocker, list, add, cancel, bad input.

The scenario's project is not a git repository, so the workspace is an overlay copy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from loomkin.api.summary import run_summary
from loomkin.api.timeline import build_timeline
from loomkin.coordination.speculation.state import SpeculationState
from loomkin.core.events import (
    ModelCallCompleted,
    RecordedEvent,
    SpeculationDiscarded,
    SpeculationJudged,
)
from loomkin.ids import AgentId, CallId, EventId, TaskId
from loomkin.service.speculation import summary_of

if TYPE_CHECKING:
    from .conftest import Harness


async def _tasks(harness: Harness) -> tuple[str, str]:
    session = harness.session
    await session.spawn_agent("ann", "coder")
    blocker = await session.create_task("blocker", assign_to="ann")
    dependent = await session.create_task("dependent", depends_on=(blocker,))
    await session.spawn_agent("spec", "coder")
    return blocker, dependent


async def test_speculate_list_assume_cancel(harness: Harness) -> None:
    blocker, dependent = await _tasks(harness)
    url = f"{harness.base}/tasks/{dependent}"
    body = {"agent": "spec", "assumptions": [{"key": "schema", "value": {"id": "int"}}]}
    started = await harness.client.post(f"{url}/speculate", json=body)
    assert started.status_code == 201, started.text
    out = started.json()
    assert out["state"] == "running"
    assert out["blockers"] == [blocker]
    assert await asyncio.to_thread(Path(out["workspace"]).is_dir)
    assert out["assumptions"][0]["value"] == {"id": "int"}
    assert out["decision"]["speculate"] is True

    added = await harness.client.post(f"{url}/assumptions", json={"text": "ids stay ints"})
    assert added.status_code == 201
    listed = (await harness.client.get(f"{harness.base}/speculations")).json()
    (one,) = listed["speculations"]
    assert len(one["assumptions"]) == 2
    assert listed["summary"]["running"] == 1
    # What the web panel shows: the title, and the work at stake while it runs.
    assert one["title"] == "dependent"
    assert set(one["at_stake"]) == {"s", "tokens", "usd", "model_calls"}
    assert one["at_stake"]["s"] >= 0
    assert one["judgements"] == []

    cancelled = await harness.client.post(f"{url}/speculation/cancel", json={})
    assert cancelled.status_code == 202
    await harness.until(lambda: harness.session.speculations()[0].state == "discarded")
    assert not await asyncio.to_thread(Path(out["workspace"]).exists)
    outcome = harness.session.speculations()[0].outcome
    assert outcome is not None
    assert outcome["reason"] == "cancelled"
    after = (await harness.client.get(f"{harness.base}/speculations")).json()
    assert after["speculations"][0]["at_stake"] is None  # settled: the waste is in the outcome
    summary = after["summary"]
    assert (summary["discarded"], summary["running"]) == (1, 0)
    assert summary["wasted_model_calls"] == outcome["wasted_model_calls"]
    assert summary["wasted_tokens"] == outcome["wasted_tokens"]
    assert 0.0 <= summary["waste_fraction"] <= 1.0
    assert summary["judge_calls"] == 0


async def test_speculation_routes_refuse_bad_input(harness: Harness) -> None:
    _blocker, dependent = await _tasks(harness)
    url = f"{harness.base}/tasks/{dependent}"
    none = await harness.client.post(f"{url}/speculate", json={"agent": "spec", "assumptions": []})
    assert none.status_code == 422
    extra = {"agent": "spec", "assumptions": [{"key": "a", "value": 1, "bogus": 2}]}
    assert (await harness.client.post(f"{url}/speculate", json=extra)).status_code == 422
    both = {"agent": "spec", "assumptions": [{"key": "a", "text": "b"}]}
    refused = await harness.client.post(f"{url}/speculate", json=both)
    assert refused.status_code == 422
    assert "either a key" in refused.text
    missing = await harness.client.post(f"{harness.base}/tasks/nope/speculation/cancel", json={})
    assert missing.status_code == 404
    assert harness.session.speculations() == []


def test_waste_fraction_is_discarded_tokens_over_all_tokens() -> None:
    """``waste_fraction``: tokens of discarded speculative work ÷ every model call's tokens."""
    state = SpeculationState(alpha=1.0, beta=1.0)
    ids = {"session_id": "s1"}
    state.apply(
        ModelCallCompleted(
            **ids,
            agent_id=AgentId("a1"),
            call_id=CallId("c1"),
            text="",
            input_tokens=300,
            output_tokens=100,
        ),
        1.0,
    )
    state.apply(
        SpeculationJudged(
            **ids,
            task_id=TaskId("t1"),
            agent_id=AgentId("a1"),
            assumption_id="as1",
            on_task=TaskId("t0"),
            call_id="jc1",
            model="m",
            holds=False,
            reasoning="no",
            input_tokens=80,
            output_tokens=20,
            cost_usd=0.5,
        ),
        2.0,
    )
    state.apply(
        SpeculationDiscarded(
            **ids,
            task_id=TaskId("t1"),
            reason="assumption_failed",
            wasted_s=4.0,
            wasted_tokens=125,
            wasted_model_calls=2,
        ),
        3.0,
    )
    summary = summary_of(SimpleNamespace(state=state))  # type: ignore[arg-type]
    assert summary.waste_fraction == pytest.approx(125 / 500)
    assert (summary.wasted_tokens, summary.wasted_model_calls) == (125, 2)
    assert (summary.judge_calls, summary.judge_tokens, summary.judge_usd) == (1, 100, 0.5)
    empty = summary_of(SimpleNamespace(state=SpeculationState(alpha=1.0, beta=1.0)))  # type: ignore[arg-type]
    assert empty.waste_fraction == 0.0


def test_the_judges_call_counts_in_the_report_and_the_spend_curve() -> None:
    """The run report and the timeline's spend curve count the judge's model call."""
    judged = SpeculationJudged(
        session_id="s1",
        task_id=TaskId("t1"),
        agent_id=AgentId("a1"),
        assumption_id="as1",
        on_task=TaskId("t0"),
        call_id="jc1",
        model="m",
        holds=True,
        reasoning="yes",
        input_tokens=80,
        output_tokens=20,
        cost_usd=0.25,
    )
    events = [
        RecordedEvent(
            position=1,
            stream="task:t1",
            stream_version=1,
            event_id=EventId("e1"),
            recorded_at=5.0,
            event=judged,
        )
    ]
    report = run_summary(events, "/p")
    assert (report.model_calls, report.input_tokens, report.cost_usd) == (1, 80, 0.25)
    (point,) = build_timeline(events, {}).spend
    assert (point.agent_id, point.tokens, point.cost_usd) == ("a1", 100, 0.25)
