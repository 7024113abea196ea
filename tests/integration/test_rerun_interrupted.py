"""Issue #15: a tool call cut off by a crash is run again only when that is safe.

A call journaled as started and never completed is left in the log when the runtime stops
mid-call (as a crash leaves it). On resume, a call whose tool is idempotent for its arguments
runs again as attempt 2 of the same call id; any other is reported to the model as interrupted.
The session summary lists a file as changed only if a write to it completed. On SQLite and on
the real Postgres server.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.agents.rerun import MAX_ATTEMPTS
from loomkin.core.chat import ToolResultMessage
from loomkin.core.events import ToolCallCompleted, ToolCallStarted
from loomkin.service import Loomkin
from loomkin.testing.internals import live_agent
from loomkin.testing.models import Call, Reply, ScriptedModel
from loomkin.tools.base import ToolArgs, ToolContext, ToolSet, tool

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.context import AgentContext
    from loomkin.core.events import RecordedEvent
    from loomkin.service import Session
    from loomkin.tools.base import Tool

pytestmark = pytest.mark.timeout(60)

SETTINGS = SessionSettings(bootstrap_orienter=False)


class ProbeArgs(ToolArgs):
    """Arguments of the test tools."""

    path: str = "a.py"
    old_string: str = ""
    new_string: str = ""


def _blocking(name: str, *, idempotent: bool, opened: asyncio.Event, runs: list[str]) -> Tool:
    @tool(
        name=name,
        category="read",  # allowed without asking: the test is about the re-run
        args=ProbeArgs,
        description="A tool that waits until the test lets it finish.",
        idempotent=idempotent,
    )
    async def run(args: ProbeArgs, ctx: ToolContext, deps: AgentContext) -> str:
        runs.append(ctx.call_id)
        await opened.wait()
        return f"{name} {args.path}: fine"

    return run


def _install(session: Session, *tools: Tool) -> None:
    agent = live_agent(session, "worker")
    agent.tools = ToolSet(list(tools)).union(agent.tools)  # these win over same-named tools


async def _started(lk: Loomkin, session: Session, tool_name: str) -> None:
    async with lk.events(session.session_id, after=0) as events:
        async for recorded in events:
            if isinstance(recorded.event, ToolCallStarted) and recorded.event.tool == tool_name:
                return


def _calls(log: list[RecordedEvent], tool_name: str) -> tuple[list[int], list[str]]:
    attempts = [
        r.event.attempt
        for r in log
        if isinstance(r.event, ToolCallStarted) and r.event.tool == tool_name
    ]
    outcomes = [
        r.event.outcome
        for r in log
        if isinstance(r.event, ToolCallCompleted) and r.event.tool == tool_name
    ]
    return attempts, outcomes


async def _crash_during(store: str, project: Path, tool_name: str, *, idempotent: bool) -> str:
    lk = await Loomkin.open(store)
    model = ScriptedModel([Reply(tool_calls=[Call(tool_name, {"path": "a.py"})])])
    session = await lk.open_session(project, model_factory=lambda _r, _n: model, settings=SETTINGS)
    await session.spawn_agent("worker", "coder")
    never: list[str] = []
    _install(
        session, _blocking(tool_name, idempotent=idempotent, opened=asyncio.Event(), runs=never)
    )
    await session.send("go", to="worker")
    await _started(lk, session, tool_name)
    await lk.close()  # mid-call
    return session.session_id


async def _resume(
    store: str, session_id: str, tool_name: str, *, idempotent: bool, runs: list[str]
) -> tuple[Loomkin, Session, ScriptedModel]:
    opened = asyncio.Event()
    opened.set()
    model = ScriptedModel([Reply(text="done")])
    lk = await Loomkin.open(store)
    session = await lk.resume_session(
        session_id, model_factory=lambda _r, _n: model, settings=SETTINGS
    )
    _install(session, _blocking(tool_name, idempotent=idempotent, opened=opened, runs=runs))
    await session.wait_idle()
    return lk, session, model


async def test_an_interrupted_idempotent_call_runs_again_as_a_new_attempt(
    store_url: str, project: Path
) -> None:
    session_id = await _crash_during(store_url, project, "probe", idempotent=True)
    runs: list[str] = []
    lk, session, model = await _resume(store_url, session_id, "probe", idempotent=True, runs=runs)
    try:
        attempts, outcomes = _calls(await session.history(), "probe")
        assert attempts == [1, 2]
        assert outcomes == ["ok"]
        assert len(runs) == 1  # run once more, here
        (asked,) = model.requests
        last = asked.messages[-1]
        assert isinstance(last, ToolResultMessage)
        assert (last.name, last.content, last.is_error) == ("probe", "probe a.py: fine", False)
    finally:
        await lk.close()


async def test_an_interrupted_call_that_is_not_idempotent_is_reported_not_run(
    store_url: str, project: Path
) -> None:
    session_id = await _crash_during(store_url, project, "poke", idempotent=False)
    runs: list[str] = []
    lk, session, model = await _resume(store_url, session_id, "poke", idempotent=False, runs=runs)
    try:
        attempts, outcomes = _calls(await session.history(), "poke")
        assert attempts == [1]
        assert outcomes == ["interrupted"]
        assert runs == []
        (asked,) = model.requests
        last = asked.messages[-1]
        assert isinstance(last, ToolResultMessage)
        assert last.content.startswith("interrupted")
    finally:
        await lk.close()


async def test_a_call_that_keeps_dying_is_given_up_after_a_few_attempts(
    store_url: str, project: Path
) -> None:
    session_id = await _crash_during(store_url, project, "probe", idempotent=True)
    for _ in range(MAX_ATTEMPTS - 1):  # every re-run dies too
        lk = await Loomkin.open(store_url)
        session = await lk.resume_session(
            session_id, model_factory=lambda _r, _n: ScriptedModel([]), settings=SETTINGS
        )
        _install(session, _blocking("probe", idempotent=True, opened=asyncio.Event(), runs=[]))
        await _started_attempt(lk, session)
        await lk.close()
    runs: list[str] = []
    lk, session, _model = await _resume(store_url, session_id, "probe", idempotent=True, runs=runs)
    try:
        attempts, outcomes = _calls(await session.history(), "probe")
        assert attempts == list(range(1, MAX_ATTEMPTS + 1))
        assert outcomes == ["interrupted"]
        assert runs == []
    finally:
        await lk.close()


async def _started_attempt(lk: Loomkin, session: Session) -> None:
    """Wait until this runtime started its own attempt of the call."""
    history = await session.history()
    async with lk.events(session.session_id, after=history[-1].position) as events:
        async for recorded in events:
            if isinstance(recorded.event, ToolCallStarted):
                return


async def test_the_summary_lists_only_files_a_completed_write_changed(
    store_url: str, project: Path
) -> None:
    (project / "b.py").write_text("x = 1\n")
    lk = await Loomkin.open(store_url)
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("file_write", {"path": "a.py", "content": "a = 1\n"})]),
            Reply(
                tool_calls=[
                    Call("file_edit", {"path": "b.py", "old_string": "1", "new_string": "2"})
                ]
            ),
        ]
    )
    session = await lk.open_session(
        project,
        model_factory=lambda _r, _n: model,
        settings=SETTINGS,
    )
    session.set_permission_responder(_allow)
    await session.spawn_agent("worker", "coder")
    task_id = await session.create_task("change files", assign_to="worker")
    opened = asyncio.Event()
    edit = _blocking("file_edit", idempotent=False, opened=opened, runs=[])
    _install(session, edit)
    await _started(lk, session, "file_edit")
    await lk.close()  # the edit of b.py was running: it may or may not have landed

    claims = {"result": "done", "files_changed": ["a.py", "b.py", "ghost.py"]}
    again = ScriptedModel([Reply(tool_calls=[Call("task_complete", claims)]), Reply(text="ok")])
    lk = await Loomkin.open(store_url)
    try:
        resumed = await lk.resume_session(
            session.session_id, model_factory=lambda _r, _n: again, settings=SETTINGS
        )
        resumed.set_permission_responder(_allow)
        await resumed.wait_idle()
        assert resumed.task(task_id).status == "completed"
        summary = await resumed.summary()
        assert summary.files_changed == ("a.py",)  # not the interrupted edit, not the claims
    finally:
        await lk.close()


async def _allow(_prompt: object) -> str:
    return "allow_once"
