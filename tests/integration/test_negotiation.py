"""Negotiation of assignments end to end (issue #17, epic 6.8), through the real runtime.

Scripted models stand in for the LLM: each agent's model plays a part by agent name. The
loop, the tools, the task board, the scheduler and the negotiation book are real, in virtual
time (the windows elapse virtually).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest
from _pipeline_models import current_turn

from loomkin.agents import SessionSettings
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import (
    NegotiationCountered,
    NegotiationResolved,
    TaskAssigned,
)
from loomkin.core.scheduling import infer_task_type
from loomkin.errors import UserError
from loomkin.ids import AgentId
from loomkin.service import Loomkin
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.core.events import Event, RecordedEvent
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

SETTINGS = SessionSettings(bootstrap_orienter=False)

Part = Callable[["ModelRequest"], Awaitable[Reply]]


def cast(parts: dict[str, Part]) -> Callable[[Role, str], Model]:
    """A model factory: each agent plays its part (agents without one just answer)."""
    models: dict[str, FunctionModel] = {}

    async def idle(_request: ModelRequest) -> Reply:
        return Reply(text="Nothing for me to do.")

    def factory(_role: Role, name: str) -> Model:
        if name not in models:
            models[name] = FunctionModel(parts.get(name, idle), name=f"scripted:{name}")
        return models[name]

    return factory


def results(request: ModelRequest, tool: str) -> list[str]:
    return [
        m.content for m in request.messages if isinstance(m, ToolResultMessage) and m.name == tool
    ]


def texts(request: ModelRequest) -> str:
    return "\n".join(m.text for m in request.messages if isinstance(m, UserMessage))


def worker(*, counter: dict[str, object] | None = None, decline: str = "") -> Part:
    """Objects once (a counter or a decline) on a new task, else does it at once."""

    async def play(request: ModelRequest) -> Reply:
        turn = current_turn(request.messages)
        if turn is None:
            return Reply(text="Nothing to do.")
        objected = results(request, "task_counter") + results(request, "task_decline")
        if counter is not None and not objected:
            return Reply(tool_calls=[Call("task_counter", dict(counter))])  # type: ignore[arg-type]
        if decline and not objected:
            return Reply(tool_calls=[Call("task_decline", {"reason": decline})])
        if objected and "stays yours" not in texts(request):
            return Reply(text="Objection sent.")
        if not results(request, "task_complete"):
            return Reply(tool_calls=[Call("task_complete", {"result": f"{turn.title}: done"})])
        return Reply(text="Done.")

    return play


def doer() -> Part:
    return worker()


def of(recorded: list[RecordedEvent], kind: type[Event]) -> list[Event]:
    return [r.event for r in recorded if isinstance(r.event, kind)]


async def settle(lk: Loomkin) -> None:
    await lk.wait_idle()


async def resolved_at(session: Session, deadline_s: float | None) -> NegotiationResolved:
    """Wait (virtual time) for the session's first resolved negotiation, ``deadline_s`` at most.

    A window's timer runs on the session's timers, which ``wait_idle`` does not wait for, so
    the test waits on the event the window's end appends rather than sleeping past it.
    """
    async with asyncio.timeout(deadline_s), session.events() as events:
        async for recorded in events:
            if isinstance(recorded.event, NegotiationResolved):
                return recorded.event
    raise AssertionError("the event log closed before a negotiation was resolved")


async def test_a_counter_proposal_moves_the_task_and_marks_the_decliner(project: Path) -> None:
    parts = {
        "ann": worker(
            counter={"kind": "suggest_agent", "agent": "bob", "reason": "bob writes our docs"}
        ),
        "bob": doer(),
    }
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=cast(parts), settings=SETTINGS)
        ann = await session.spawn_agent("ann", "coder")
        bob = await session.spawn_agent("bob", "coder")
        task_id = await session.create_task("document the parser")
        await settle(lk)
        recorded = await session.history()

        task = session.task(task_id)
        assert task.status == "completed"
        assert task.owner_id == bob.agent_id
        assigned = [e for e in of(recorded, TaskAssigned) if isinstance(e, TaskAssigned)]
        assert [(a.owner_name, a.assigned_by) for a in assigned] == [
            ("ann", "scheduler"),
            ("bob", "negotiation"),
        ]
        (countered,) = of(recorded, NegotiationCountered)
        assert isinstance(countered, NegotiationCountered)
        assert (countered.counter_kind, countered.suggested_name) == ("suggest_agent", "bob")
        resolved = [e for e in of(recorded, NegotiationResolved) if e.agent_id == ann.agent_id]
        assert len(resolved) == 1
        assert isinstance(resolved[0], NegotiationResolved)
        assert resolved[0].outcome == "reassigned"
        assert resolved[0].decided_by == "policy"
        assert resolved[0].new_owner_name == "bob"
        # The counter counts against ann's fit for documentation; bob's completion for his.
        stats = session_runtime(session).ctx.scheduler_stats
        kind = infer_task_type("document the parser")
        assert stats.counts(AgentId(ann.agent_id), kind) == (0, 1)
        assert stats.counts(AgentId(bob.agent_id), kind) == (1, 1)
        # Views: the facade lists both negotiations with their outcomes.
        rows = session.negotiations()
        assert (rows[0].agent_name, rows[0].status) == ("ann", "reassigned")


async def test_a_decline_goes_to_the_best_other_agent_never_back(project: Path) -> None:
    parts = {"ann": worker(decline="not my area"), "bob": worker(decline="not mine either")}
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=cast(parts), settings=SETTINGS)
        await session.spawn_agent("ann", "coder")
        await session.spawn_agent("bob", "coder")
        task_id = await session.create_task("implement the lexer")
        await settle(lk)
        recorded = await session.history()
        outcomes = [
            (e.outcome, e.new_owner_name)
            for e in of(recorded, NegotiationResolved)
            if isinstance(e, NegotiationResolved)
        ]
        # ann declines → bob; bob declines too → nobody else: it stays with bob, who does it.
        assert outcomes == [("reassigned", "bob"), ("kept", "")]
        assert session.task(task_id).status == "completed"
        assert session.task(task_id).owner == "bob"


def lead(answer: Callable[[str], Reply] | None = None) -> Part:
    """Assigns "implement the lexer" to ann; answers an objection with ``answer(task_id)``."""

    async def play(request: ModelRequest) -> Reply:
        seen = texts(request)
        if not results(request, "team_assign"):
            args = {"agent": "ann", "title": "implement the lexer"}
            return Reply(tool_calls=[Call("team_assign", args)])  # type: ignore[arg-type]
        offer = OFFER.search(seen)
        if offer and answer is not None and not results(request, "negotiation_resolve"):
            return answer(offer["task_id"])
        return Reply(text="Noted.")

    return play


OFFER = re.compile(r"negotiation_resolve\(task_id='(?P<task_id>[^']+)'")


async def test_a_decline_to_a_lead_times_out_to_the_fallback(project: Path) -> None:
    parts = {"ann": worker(decline="I only do frontend"), "lea": lead(), "bob": doer()}
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=cast(parts), settings=SETTINGS)
        await session.spawn_agent("lea", "lead")
        ann = await session.spawn_agent("ann", "coder")
        await session.spawn_agent("bob", "coder")
        await session.send("Get the lexer written.", to="lea")
        await settle(lk)
        (task,) = session.tasks()
        # The objection waits for lea, who assigned; the task waits blocked meanwhile.
        assert (task.status, task.owner_id) == ("blocked", ann.agent_id)
        (row,) = session.negotiations()
        assert (row.assigner, row.status, row.response) == ("lea", "countered", "decline")
        started = asyncio.get_running_loop().time()

        # The window (30 s after a decline) elapses unanswered.
        resolved = await resolved_at(session, 31.0)
        assert asyncio.get_running_loop().time() - started >= 30.0
        await settle(lk)
        recorded = await session.history()
        assert of(recorded, NegotiationResolved) == [resolved]
        assert (resolved.outcome, resolved.decided_by) == ("kept", "window")
        assert resolved.declined  # it still counts against ann's fit
        done = session.task(task.task_id)
        assert (done.status, done.owner_id) == ("completed", ann.agent_id)


async def test_a_lead_accepts_a_counter_and_the_task_moves(project: Path) -> None:
    def accept(task_id: str) -> Reply:
        args = {"task_id": task_id, "resolution": "accept", "reason": "fair enough"}
        return Reply(tool_calls=[Call("negotiation_resolve", args)])  # type: ignore[arg-type]

    counter = {"kind": "suggest_agent", "agent": "bob", "reason": "bob wrote the old lexer"}
    parts = {"ann": worker(counter=counter), "lea": lead(accept), "bob": doer()}
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=cast(parts), settings=SETTINGS)
        await session.spawn_agent("lea", "lead")
        await session.spawn_agent("ann", "coder")
        bob = await session.spawn_agent("bob", "coder")
        await session.send("Get the lexer written.", to="lea")
        await settle(lk)
        (task,) = session.tasks()
        assert (task.status, task.owner_id) == ("completed", bob.agent_id)
        recorded = await session.history()
        resolved = [
            e for e in of(recorded, NegotiationResolved) if isinstance(e, NegotiationResolved)
        ]
        first = resolved[0]
        assert (first.outcome, first.decided_by, first.new_owner_name) == (
            "reassigned",
            "lea",
            "bob",
        )


async def test_the_user_resolves_and_bad_resolutions_are_refused(project: Path) -> None:
    counter = {"kind": "suggest_agent", "agent": "bob", "reason": "bob knows it"}
    parts = {"ann": worker(counter=counter), "lea": lead(), "bob": doer(), "cy": doer()}
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=cast(parts), settings=SETTINGS)
        await session.spawn_agent("lea", "lead")
        await session.spawn_agent("ann", "coder")
        await session.spawn_agent("bob", "coder")
        cy = await session.spawn_agent("cy", "coder")
        await session.send("Get the lexer written.", to="lea")
        await settle(lk)
        (task,) = session.tasks()
        with pytest.raises(UserError, match="resolution must be one of"):
            await session.resolve_negotiation(task.task_id, "maybe")
        with pytest.raises(UserError, match="lea"):
            await session.resolve_negotiation(task.task_id, "reassign", agent="lea")
        text = await session.resolve_negotiation(task.task_id, "reassign", agent="cy")
        assert "reassigned to cy" in text
        await settle(lk)
        assert session.task(task.task_id).owner_id == cy.agent_id
        assert session.task(task.task_id).status == "completed"
        with pytest.raises(UserError, match="no objection waiting"):
            await session.resolve_negotiation(task.task_id, "override")


async def test_a_negotiation_in_flight_survives_a_restart(project: Path, store_url: str) -> None:
    parts = {"ann": worker(decline="I only do frontend"), "lea": lead(), "bob": doer()}
    async with await Loomkin.open(store_url) as lk:
        session = await lk.open_session(project, model_factory=cast(parts), settings=SETTINGS)
        await session.spawn_agent("lea", "lead")
        await session.spawn_agent("ann", "coder")
        await session.spawn_agent("bob", "coder")
        await session.send("Get the lexer written.", to="lea")
        await settle(lk)
        (row,) = session.negotiations()
        assert row.status == "countered"
        session_id = session.session_id

    parts = {"ann": worker(decline="I only do frontend"), "lea": lead(), "bob": doer()}
    async with await Loomkin.open(store_url) as lk:
        session = await lk.resume_session(session_id, model_factory=cast(parts), settings=SETTINGS)
        await settle(lk)
        (row,) = session.negotiations()
        assert row.status == "countered"  # rebuilt from the log, its window re-armed
        # The deadline is clock time, and each runtime anchors its virtual clock to the wall
        # clock anew: wait until the recorded deadline as this runtime's clock reads it.
        clock = session_runtime(session).ctx.clock
        assert 0 < row.deadline - clock.now() <= 120
        # No virtual bound here (the test's timeout is the bound): while the window's append
        # is on the wire to a remote store, looptime moves the clock on to the next timer,
        # and a bound of ours would be that timer.
        resolved = await resolved_at(session, None)
        assert (resolved.outcome, resolved.decided_by) == ("kept", "window")
        await settle(lk)
        (row,) = session.negotiations()
        assert (row.status, row.decided_by) == ("kept", "window")
        (task,) = session.tasks()
        assert (task.status, task.owner) == ("completed", "ann")
