"""Readiness signals and rendezvous points end to end (issue #17, epic 6.6).

Scripted models read the user's words ("arrive at X", "open X ...") and call the real tools;
the runtime, the books, the task board and the timers are real, in virtual time.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import (
    AgentReady,
    MessageSent,
    RendezvousCompleted,
    RendezvousLeft,
    RendezvousTimedOut,
    TaskCreated,
)
from loomkin.service import Loomkin
from loomkin.testing.internals import live_agent, session_runtime
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

SETTINGS = SessionSettings(bootstrap_orienter=False, comms_policy="open")
ORDER = re.compile(r"^(?:\[User\] )?(?P<verb>arrive|open|join|signal|subscribe) (?P<rest>.*)$")


async def _obey(request: ModelRequest) -> Reply:
    """Do what the latest user message says, once; then answer."""
    last = next((m for m in reversed(request.messages) if isinstance(m, UserMessage)), None)
    if isinstance(request.messages[-1], ToolResultMessage) or last is None:
        return Reply(text="Done.")
    found = ORDER.match(last.text.splitlines()[-1].strip())
    if found is None:
        return Reply(text="Noted.")
    verb, rest = found["verb"], found["rest"]
    if verb == "arrive":
        return Reply(tool_calls=[Call("rendezvous_arrive", {"name": rest})])
    if verb == "signal":
        return Reply(tool_calls=[Call("signal_ready", {"name": rest, "detail": "all set"})])
    if verb == "subscribe":
        return Reply(tool_calls=[Call("subscribe_ready", {"name": rest})])
    args = json.loads(rest)
    tool = "rendezvous_create" if verb == "open" else "rendezvous_join"
    return Reply(tool_calls=[Call(tool, args)])


def _factory(_role: Role, name: str) -> Model:
    return FunctionModel(_obey, name=f"scripted:{name}")


async def _setup(lk: Loomkin, project: Path) -> Session:
    session = await lk.open_session(project, model_factory=_factory, settings=SETTINGS)
    for team in ("alpha", "beta", "gamma"):
        await session.create_team(team)
    await session.spawn_agent("lead", "lead", team="alpha")
    await session.spawn_agent("a1", "coder", team="alpha")
    await session.spawn_agent("b1", "coder", team="beta")
    await session.spawn_agent("c1", "coder", team="gamma")
    return session


async def test_a_three_team_rendezvous_with_a_late_participant_and_a_timeout(
    project: Path,
) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=_factory, settings=SETTINGS)
        for team in ("alpha", "beta", "gamma"):
            await session.create_team(team)
        await session.spawn_agent("lead", "lead", team="alpha")
        a1 = await session.spawn_agent("a1", "coder", team="alpha")
        await session.spawn_agent("b1", "coder", team="beta")
        await session.spawn_agent("c1", "coder", team="gamma")
        release = {
            "name": "release",
            "participants": ["alpha/a1", "beta/b1"],
            "on_complete": "create_task",
            "task_title": "ship the release",
            "message": "all three teams are ready",
        }
        await session.send(f"open {json.dumps(release)}", to="alpha/lead")
        await lk.wait_idle()
        join = {"name": "release", "agents": ["gamma/c1"]}
        await session.send(f"join {json.dumps(join)}", to="alpha/lead")  # added at runtime
        await lk.wait_idle()
        for who in ("alpha/a1", "beta/b1"):
            await session.send("arrive release", to=who)
        await lk.wait_idle()
        (row,) = session.rendezvous()
        assert (row.status, row.missing) == ("open", ("c1",))  # the late one is awaited
        await session.send("arrive release", to="gamma/c1")
        await lk.wait_idle()

        recorded = await session.history()
        (done,) = [r.event for r in recorded if isinstance(r.event, RendezvousCompleted)]
        assert isinstance(done, RendezvousCompleted)
        assert set(done.arrived) == {"a1", "b1", "c1"}
        created = [
            r.event
            for r in recorded
            if isinstance(r.event, TaskCreated) and r.event.title == "ship the release"
        ]
        assert len(created) == 1  # the action ran once
        assert created[0].task_id == done.task_id

        sync = {"name": "sync", "participants": ["alpha/a1", "beta/b1"], "timeout_s": 120}
        await session.send(f"open {json.dumps(sync)}", to="alpha/lead")
        await lk.wait_idle()
        await session.send("arrive sync", to="alpha/a1")
        await lk.wait_idle()
        await asyncio.sleep(121.0)
        await lk.wait_idle()
        timed_out = [
            r.event for r in await session.history() if isinstance(r.event, RendezvousTimedOut)
        ]
        assert len(timed_out) == 1
        assert isinstance(timed_out[0], RendezvousTimedOut)
        assert timed_out[0].missing == ("b1",)
        notes = [
            r.event
            for r in await session.history()
            if isinstance(r.event, MessageSent)
            and r.event.msg_type == "rendezvous"
            and "timed out" in r.event.content
        ]
        assert {n.to_agent for n in notes if isinstance(n, MessageSent)} >= {a1.agent_id}
        assert {r.name: r.status for r in session.rendezvous()} == {
            "release": "completed",
            "sync": "timed_out",
        }


async def test_a_rendezvous_survives_a_restart(project: Path, store_url: str) -> None:
    async with await Loomkin.open(store_url) as lk:
        session = await _setup(lk, project)
        info = await session.create_rendezvous(
            "merge", ["alpha/a1", "beta/b1"], message="merge now", timeout_s=3600
        )
        assert info.status == "open"
        await session.send("arrive merge", to="alpha/a1")
        await lk.wait_idle()
        session_id = session.session_id

    async with await Loomkin.open(store_url) as lk:
        session = await lk.resume_session(session_id, model_factory=_factory, settings=SETTINGS)
        await lk.wait_idle()
        (row,) = session.rendezvous()
        assert (row.status, row.arrived, row.missing) == ("open", ("a1",), ("b1",))
        await session.send("arrive merge", to="beta/b1")
        for _ in range(600):  # a remote store's append may still be on the wire
            await lk.wait_idle()
            if session.rendezvous()[0].status != "open":
                break
            await asyncio.sleep(0.1)
        (row,) = session.rendezvous()
        assert row.status == "completed"
        messages = [
            r.event
            for r in await session.history()
            if isinstance(r.event, MessageSent) and r.event.msg_type == "rendezvous"
        ]
        assert len(messages) == 2  # one per participant, once
        assert all("merge now" in m.content for m in messages if isinstance(m, MessageSent))


async def test_named_readiness_wakes_its_subscriber(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=_factory, settings=SETTINGS)
        await session.create_team("alpha")
        watcher = await session.spawn_agent("lead", "lead", team="alpha")
        await session.spawn_agent("a1", "coder", team="alpha")
        await session.send("subscribe schema_ready", to="alpha/lead")
        await lk.wait_idle()
        await session.send("signal schema_ready", to="alpha/a1")
        await lk.wait_idle()
        recorded = await session.history()
        (ready,) = [r.event for r in recorded if isinstance(r.event, AgentReady)]
        assert isinstance(ready, AgentReady)
        assert (ready.agent_name, ready.ready_for) == ("a1", "schema_ready")
        (notice,) = [
            r.event
            for r in recorded
            if isinstance(r.event, MessageSent) and r.event.msg_type == "ready_notice"
        ]
        assert isinstance(notice, MessageSent)
        assert notice.to_agent == watcher.agent_id
        assert notice.content == "a1 (team alpha) is ready for 'schema_ready': all set."


def _briefing(
    orienter_delay_s: float, *, signals: bool
) -> tuple[Callable[[Role, str], Model], list[tuple[float, str]]]:
    """An Orienter that briefs after ``orienter_delay_s`` (signalling it or not); a Concierge
    that records when it first plans and what it read by then."""
    seen: list[tuple[float, str]] = []

    async def orienter(request: ModelRequest) -> Reply:
        done = [m.name for m in request.messages if isinstance(m, ToolResultMessage)]
        if not done:
            await asyncio.sleep(orienter_delay_s)
            brief = {"to": "concierge", "content": "## Session brief\nActive goals: none."}
            return Reply(tool_calls=[Call("peer_message", brief)])
        if signals and "signal_ready" not in done:
            return Reply(tool_calls=[Call("signal_ready", {"name": "briefed"})])
        return Reply(text="Briefed.")

    async def concierge(request: ModelRequest) -> Reply:
        text = "\n".join(m.text for m in request.messages if isinstance(m, UserMessage))
        seen.append((asyncio.get_running_loop().time(), text))
        return Reply(text="Planning with what I know.")

    def factory(role: Role, name: str) -> Model:
        fn = orienter if role.name == "orienter" else concierge
        return FunctionModel(fn, name=f"scripted:{name}")

    return factory, seen


async def test_the_concierge_plans_once_briefed(project: Path) -> None:
    factory, seen = _briefing(20.0, signals=True)
    settings = SessionSettings(bootstrap_orienter=True)
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=factory, settings=settings)
        start = asyncio.get_running_loop().time()
        await session.send("Add a farewell function.")
        await lk.wait_idle()
        first_at, first_text = seen[0]
        assert "## Session brief" in first_text  # its first plan read the brief
        assert "Add a farewell function." in first_text
        assert first_at - start == pytest.approx(20.0)
        recorded = await session.history()
        assert any(
            isinstance(r.event, AgentReady) and r.event.ready_for == "briefed" for r in recorded
        )


async def test_the_concierge_stops_waiting_at_the_timeout(project: Path) -> None:
    factory, seen = _briefing(500.0, signals=False)
    settings = SessionSettings(bootstrap_orienter=True, briefed_timeout_s=60.0)
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=factory, settings=settings)
        start = asyncio.get_running_loop().time()
        await session.send("Add a farewell function.")
        await lk.wait_idle()
        first_at, first_text = seen[0]
        assert first_at - start == pytest.approx(60.0)  # the timeout, not the slow Orienter
        assert "## Session brief" not in first_text


async def test_a_retired_participant_is_removed_and_the_rest_complete(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await _setup(lk, project)
        await session.create_rendezvous("merge", ["alpha/a1", "beta/b1"], message="go")
        await session.send("arrive merge", to="alpha/a1")
        await lk.wait_idle()
        await live_agent(session, "beta/b1").set_status("done", "retired")
        for _ in range(100):
            await lk.wait_idle()
            if session.rendezvous()[0].status != "open":
                break
            await asyncio.sleep(0.1)
        (row,) = session.rendezvous()
        assert (row.status, row.participants, row.arrived) == ("completed", ("a1",), ("a1",))
        left = [r.event for r in await session.history() if isinstance(r.event, RendezvousLeft)]
        assert [(e.agent_name, e.reason) for e in left if isinstance(e, RendezvousLeft)] == [
            ("b1", "it is done")
        ]


async def test_an_idle_agent_is_announced_to_its_subscribers(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await _setup(lk, project)
        lead = session.agent("alpha/lead")
        runtime = session_runtime(session)
        me = runtime.directory.member(lead.agent_id)
        target = runtime.directory.member(session.agent("beta/b1").agent_id)
        assert me is not None
        assert target is not None
        await runtime.coordination.readiness.subscribe(me, "agent", target.agent_id, "b1")
        await session.send("hello", to="beta/b1")  # b1 works, then turns idle
        for _ in range(100):
            await lk.wait_idle()
            notices = [
                r.event
                for r in await session.history()
                if isinstance(r.event, MessageSent) and r.event.msg_type == "ready_notice"
            ]
            if notices:
                break
            await asyncio.sleep(0.1)
        assert [n.content for n in notices if isinstance(n, MessageSent)] == [
            "b1 (team beta) is idle and ready for work."
        ]
        assert not runtime.coordination.readiness.subscriptions  # used once
