"""A run in front of a web app or on a cluster is not over while an agent is paused.

``Session.wait_idle`` counts a paused agent as at rest (the controls and the tests pause and
then look). ``Session.wait_finished`` waits on: a paused agent still has its loop to finish,
which a resume starts again and a cancel ends. Before, pausing the last busy agent of a
``run --serve`` ended the run and shut its web app down, and a cluster marked the session done
and refused the resume.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.events import LoopFinished
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.llm.model import ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]


async def _paused_mid_task(lk: Loomkin, project: Path) -> Session:
    (project / "README.md").write_text("# hi\n")
    calls: list[ModelRequest] = []

    def answer(request: ModelRequest) -> Reply:
        calls.append(request)
        if len(calls) == 1:
            return Reply(tool_calls=[Call("file_read", {"path": "README.md"})])
        return Reply(text="done")

    model = FunctionModel(answer)
    session = await lk.open_session(
        project,
        model_factory=lambda _r, _n: model,
        settings=SessionSettings(bootstrap_orienter=False),
    )
    await session.spawn_agent("worker", "coder")
    await session.create_task("read it", assign_to="worker")
    async with session.events(after=0) as events:
        async for recorded in events:
            if recorded.event.kind == "tool_call_completed":
                break
    await session.pause("worker")
    await session.wait_idle()  # a paused agent is at rest
    assert session.agent("worker").status == "paused"
    return session


async def test_a_paused_agent_holds_the_session_open_until_it_is_resumed(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await _paused_mid_task(lk, project)
        finished = asyncio.create_task(session.wait_finished())
        await asyncio.sleep(600)  # virtual: ten minutes paused is still not finished
        assert not finished.done()
        await session.resume("worker")
        async with asyncio.timeout(30):
            await finished
        log = [r.event for r in await session.history()]
    assert session.agent("worker").status == "idle"
    outcomes = [e.outcome for e in log if isinstance(e, LoopFinished)]
    assert outcomes[-1] == "final"  # the loop ran to its answer


async def test_cancelling_the_paused_agent_finishes_the_session(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await _paused_mid_task(lk, project)
        finished = asyncio.create_task(session.wait_finished())
        await asyncio.sleep(1)
        assert not finished.done()
        await session.cancel("worker")
        async with asyncio.timeout(30):
            await finished
    assert session.agent("worker").status != "paused"


async def test_a_session_resumed_before_the_wait_began_is_finished_at_once(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await _paused_mid_task(lk, project)
        await session.resume("worker")
        async with asyncio.timeout(30):
            await session.wait_finished()
    assert session.agent("worker").status == "idle"


async def test_run_serve_keeps_running_while_an_agent_is_paused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loomkin.cli.sessions import drive

    async with await Loomkin.open("memory:") as lk:
        session = await _paused_mid_task(lk, project)
        driving = asyncio.create_task(drive(session, None, hold_paused=True))
        await asyncio.sleep(60)
        assert not driving.done()
        assert "worker paused; resume from the web app" in capsys.readouterr().out
        await session.resume("worker")
        async with asyncio.timeout(30):
            assert await driving == 0
