"""Task states that mean something (issue #17): ready for review frees its owner and asks a
reviewer; pausing an agent pauses its task and resuming restores it; a team's budget counts
its sub-teams. Real runtime, scripted models, virtual time."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import pytest
from _pipeline_models import current_turn

from loomkin.agents import SessionSettings
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import MessageSent, TaskAssigned, TaskStatusChanged
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

SETTINGS = SessionSettings(bootstrap_orienter=False)
REVIEW = re.compile(r"task_review\(task_id='(?P<task_id>[^']+)'")


def _results(request: ModelRequest, tool: str) -> list[str]:
    return [
        m.content for m in request.messages if isinstance(m, ToolResultMessage) and m.name == tool
    ]


async def _coder(request: ModelRequest) -> Reply:
    turn = current_turn(request.messages)
    if turn is None:
        return Reply(text="Nothing to do.")
    done = turn.results("task_update") + turn.results("task_complete")
    if done:
        return Reply(text=f"{turn.title}: handed on.")
    await asyncio.sleep(5.0)
    if turn.title.startswith("review me"):
        args = {"status": "ready_for_review", "note": "please check the edge cases"}
        return Reply(tool_calls=[Call("task_update", args)])  # type: ignore[arg-type]
    return Reply(tool_calls=[Call("task_complete", {"result": f"{turn.title}: done"})])


async def _reviewer(request: ModelRequest) -> Reply:
    texts = "\n".join(m.text for m in request.messages if isinstance(m, UserMessage))
    asked = REVIEW.search(texts)
    if asked and not _results(request, "task_review"):
        await asyncio.sleep(30.0)  # the review takes a while: the coder is not waiting on it
        args = {"task_id": asked["task_id"], "verdict": "approve", "note": "looks right"}
        return Reply(tool_calls=[Call("task_review", args)])  # type: ignore[arg-type]
    return Reply(text="Reviewed.")


def _factory(_role: Role, name: str) -> Model:
    return FunctionModel(_reviewer if name == "lea" else _coder, name=f"scripted:{name}")


async def test_ready_for_review_asks_the_lead_and_frees_the_owner(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=_factory, settings=SETTINGS)
        lea = await session.spawn_agent("lea", "lead")
        ann = await session.spawn_agent("ann", "coder")
        first = await session.create_task("review me: the parser")
        second = await session.create_task("write the lexer")
        await lk.wait_idle()
        recorded = await session.history()

        assert session.task(first).status == "completed"
        assert session.task(second).status == "completed"
        assert session.task(second).owner_id == ann.agent_id
        at = {
            (type(r.event).__name__, getattr(r.event, "status", "")): r.recorded_at
            for r in recorded
            if isinstance(r.event, TaskStatusChanged) and r.event.task_id == first
        }
        ready = at[("TaskStatusChanged", "ready_for_review")]
        approved = at[("TaskStatusChanged", "completed")]
        given = next(
            r.recorded_at
            for r in recorded
            if isinstance(r.event, TaskAssigned) and r.event.task_id == second
        )
        # ann got the second task as soon as the first was ready for review, long before the
        # (slow) review approved it: ready_for_review frees the owner.
        assert ready <= given < approved
        (request,) = [
            r.event
            for r in recorded
            if isinstance(r.event, MessageSent) and r.event.msg_type == "review_request"
        ]
        assert request.to_agent == lea.agent_id
        assert "please check the edge cases" in request.content


async def _slow(request: ModelRequest) -> Reply:
    turn = current_turn(request.messages)
    if turn is None or turn.results("task_complete"):
        return Reply(text="Done.")
    await asyncio.sleep(10.0)
    return Reply(tool_calls=[Call("task_complete", {"result": "done"})])


async def test_pausing_an_agent_pauses_its_task_and_resume_restores_it(project: Path) -> None:
    factory = lambda _r, n: FunctionModel(_slow, name=f"scripted:{n}")  # noqa: E731
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=factory, settings=SETTINGS)
        await session.spawn_agent("ann", "coder")
        task_id = await session.create_task("write the lexer")
        for _ in range(1000):
            if session.task(task_id).status == "in_progress":
                break
            await asyncio.sleep(0.01)
        await session.pause("ann")
        await lk.wait_idle()
        assert {a.name: a.status for a in session.agents()}["ann"] == "paused"
        assert session.task(task_id).status == "paused"
        await session.resume("ann")
        await lk.wait_idle()
        assert session.task(task_id).status == "completed"
        statuses = [
            r.event.status
            for r in await session.history()
            if isinstance(r.event, TaskStatusChanged) and r.event.task_id == task_id
        ]
        assert statuses == ["in_progress", "paused", "in_progress", "completed"]


async def test_a_team_budget_counts_its_sub_teams(project: Path) -> None:
    async def chatty(_request: ModelRequest) -> Reply:
        return Reply(text="x" * 400)

    factory = lambda _r, n: FunctionModel(chatty, name=f"scripted:{n}")  # noqa: E731
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=factory, settings=SETTINGS)
        await session.create_team("core")
        await session.create_team("core-db", parent="core")
        await session.spawn_agent("deb", "coder", team="core-db")
        await session.send("say something", to="deb")
        await lk.wait_idle()
        rows = {b.name: b for b in session.budgets()}
        assert rows["core-db"].tokens > 0
        assert rows["core"].tokens == rows["core-db"].tokens  # the parent includes its child
        # A team budget the child's spend already breaks stops the child's next call too.
        await session.raise_budgets({"team_tokens": rows["core"].tokens})
        await session.send("again", to="deb")
        await lk.wait_idle()
        assert {a.name: a.status for a in session.agents()}["deb"] == "paused"
        update = await session.raise_budgets({"team_tokens": None})
        # The Concierge (root team, which includes every sub-team) was told and stopped too.
        assert set(update.resumed) == {"deb", "concierge"}
        assert update.still_paused == ()


async def _partial_then_slow(request: ModelRequest) -> Reply:
    turn = current_turn(request.messages)
    if turn is None or turn.results("task_complete"):
        return Reply(text="Done.")
    if not turn.results("publish_partial"):
        args = {"content": "first half of the lexer", "completed_items": 1, "total_items": 2}
        return Reply(tool_calls=[Call("publish_partial", args)])  # type: ignore[arg-type]
    await asyncio.sleep(10.0)
    return Reply(tool_calls=[Call("task_complete", {"result": "whole lexer"})])


async def test_a_partially_complete_task_pauses_resumes_and_completes(project: Path) -> None:
    """publish_partial moves the task to partially_complete; it is still work in progress."""
    factory = lambda _r, n: FunctionModel(_partial_then_slow, name=f"scripted:{n}")  # noqa: E731
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=factory, settings=SETTINGS)
        await session.spawn_agent("ann", "coder")
        task_id = await session.create_task("write the lexer")
        for _ in range(1000):
            if session.task(task_id).status == "partially_complete":
                break
            await asyncio.sleep(0.01)
        assert session.task(task_id).status == "partially_complete"
        await session.pause("ann")
        await lk.wait_idle()
        assert session.task(task_id).status == "paused"
        await session.resume("ann")
        await lk.wait_idle()
        assert session.task(task_id).status == "completed"
        moves = [
            (r.event.previous, r.event.status)
            for r in await session.history()
            if isinstance(r.event, TaskStatusChanged) and r.event.task_id == task_id
        ]
        assert moves == [
            ("assigned", "in_progress"),
            ("in_progress", "partially_complete"),
            ("partially_complete", "paused"),
            ("paused", "in_progress"),
            ("in_progress", "completed"),
        ]
