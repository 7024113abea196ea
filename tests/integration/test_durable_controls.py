"""Issue #15: an acknowledged control survives the process and is applied exactly once.

Each test acknowledges a control (it is journaled: ``Session.pause`` and friends returned)
while the agent cannot apply it yet (its model is stuck mid-call, or its activation has not
run), then stops the runtime there: its agents are cancelled where they stand, as a crash
leaves them (the tests of the real SIGKILL are the fault-injection ones). A second runtime
resumes the session from the store, and a third one again: the control takes effect exactly
once, with exactly one outcome in the log, and nothing the agent does precedes it. On SQLite
and on the real Postgres server.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.chat import UserMessage
from loomkin.core.events import (
    ControlApplied,
    ControlDropped,
    ModelCallStarted,
    PermissionRequested,
    TaskStatusChanged,
    TranscriptAppended,
)
from loomkin.service import Loomkin, ModelFactory, Session
from loomkin.testing.models import Call, FunctionModel, Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.events import Event, RecordedEvent
    from loomkin.llm.model import Model, ModelRequest

pytestmark = pytest.mark.timeout(60)

SETTINGS = SessionSettings(bootstrap_orienter=False)


async def _stuck(_request: ModelRequest) -> Reply:
    """A model call that never answers (until the runtime stops)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _factory(model: Model) -> ModelFactory:
    return lambda _role, _name: model


async def _first_run(store: str, project: Path) -> tuple[Loomkin, Session]:
    """A runtime and a session whose worker sits in a model call that never returns."""
    lk = await Loomkin.open(store)
    session = await lk.open_session(
        project, model_factory=_factory(FunctionModel(_stuck)), settings=SETTINGS
    )
    await session.spawn_agent("worker", "coder")
    return lk, session


async def _thinking(lk: Loomkin, session: Session) -> None:
    """Wait (on the log) until the worker's model call started."""
    async with lk.events(session.session_id, after=0) as events:
        async for recorded in events:
            if isinstance(recorded.event, ModelCallStarted):
                return


async def _asking(lk: Loomkin, session: Session) -> None:
    """Wait (on the log) until the worker asks for permission."""
    async with lk.events(session.session_id, after=0) as events:
        async for recorded in events:
            if isinstance(recorded.event, PermissionRequested):
                return


async def _resume(store: str, session_id: str, model: Model) -> tuple[Loomkin, Session]:
    lk = await Loomkin.open(store)
    session = await lk.resume_session(session_id, model_factory=_factory(model), settings=SETTINGS)
    await session.wait_idle()
    return lk, session


def _outcomes(log: list[RecordedEvent], request_id: str) -> list[Event]:
    return [
        r.event
        for r in log
        if isinstance(r.event, ControlApplied | ControlDropped) and r.event.request_id == request_id
    ]


async def _third_run_changes_nothing(store: str, session_id: str, before: int) -> None:
    """Opening the session once more applies nothing again."""
    lk, _session = await _resume(store, session_id, ScriptedModel([]))
    try:
        assert lk.last_position == before
    finally:
        await lk.close()


async def test_a_pause_acknowledged_before_a_crash_pauses_the_agent_after_it(
    store_url: str, project: Path
) -> None:
    lk, session = await _first_run(store_url, project)
    await session.send("work", to="worker")
    await _thinking(lk, session)
    request = await session.pause("worker")
    await lk.close()  # the stuck call never reached a checkpoint: the pause is not applied

    model = ScriptedModel([Reply(text="must not be asked")])
    lk, resumed = await _resume(store_url, session.session_id, model)
    try:
        assert resumed.agent("worker").status == "paused"
        log = await resumed.history()
        (applied,) = _outcomes(log, request)
        assert isinstance(applied, ControlApplied)
        assert applied.checkpoint == "idle"  # applied before the agent did anything else
        assert model.requests == []
        position = lk.last_position
    finally:
        await lk.close()
    await _third_run_changes_nothing(store_url, session.session_id, position)


async def test_a_steer_acknowledged_before_a_crash_lands_once(
    store_url: str, project: Path
) -> None:
    lk, session = await _first_run(store_url, project)
    await session.send("work", to="worker")
    await _thinking(lk, session)
    request = await session.steer("worker", "use a token bucket")
    await lk.close()

    model = ScriptedModel([Reply(text="done")])
    lk, resumed = await _resume(store_url, session.session_id, model)
    try:
        (asked,) = model.requests
        guidance = UserMessage(source="guidance", text="[User guidance]: use a token bucket")
        assert asked.messages[-1] == guidance
        log = await resumed.history()
        assert len(_outcomes(log, request)) == 1
        notes = [
            r.event
            for r in log
            if isinstance(r.event, TranscriptAppended) and "token bucket" in str(r.event.message)
        ]
        assert len(notes) == 1
        position = lk.last_position
    finally:
        await lk.close()
    await _third_run_changes_nothing(store_url, session.session_id, position)


async def test_a_resume_acknowledged_before_a_crash_lets_the_agent_finish(
    store_url: str, project: Path
) -> None:
    lk = await Loomkin.open(store_url)
    session = await lk.open_session(
        project, model_factory=_factory(ScriptedModel([])), settings=SETTINGS
    )
    await session.spawn_agent("worker", "coder")
    await session.pause("worker")  # applied at once: the worker is idle
    await session.wait_idle()
    assert session.agent("worker").status == "paused"
    await session.send("work", to="worker")  # waits: the worker is paused
    request = await session.resume("worker")
    await lk.close()  # the resume's activation never ran

    model = ScriptedModel([Reply(text="finished")])
    lk, resumed = await _resume(store_url, session.session_id, model)
    try:
        assert resumed.agent("worker").status == "idle"
        assert len(model.requests) == 1
        (applied,) = _outcomes(await resumed.history(), request)
        assert isinstance(applied, ControlApplied)
        position = lk.last_position
    finally:
        await lk.close()
    await _third_run_changes_nothing(store_url, session.session_id, position)


async def test_a_cancel_acknowledged_before_a_crash_ends_the_task_once(
    store_url: str, project: Path
) -> None:
    lk, session = await _first_run(store_url, project)
    task_id = await session.create_task("write the parser", assign_to="worker")
    await _thinking(lk, session)
    request = await session.cancel("worker")
    await lk.close()

    model = ScriptedModel([Reply(text="must not be asked")])
    lk, resumed = await _resume(store_url, session.session_id, model)
    try:
        assert resumed.task(task_id).status == "cancelled"
        assert resumed.agent("worker").status == "idle"
        log = await resumed.history()
        (applied,) = _outcomes(log, request)
        cancelled = [
            r
            for r in log
            if isinstance(r.event, TaskStatusChanged) and r.event.status == "cancelled"
        ]
        (done,) = cancelled
        applied_at = next(r for r in log if r.event is applied)
        assert done.recorded_at == applied_at.recorded_at  # one batch: the decision entire
        assert model.requests == []
        position = lk.last_position
    finally:
        await lk.close()
    await _third_run_changes_nothing(store_url, session.session_id, position)


async def test_a_forced_pause_of_an_idle_agent_survives_a_crash(
    store_url: str, project: Path
) -> None:
    lk = await Loomkin.open(store_url)
    session = await lk.open_session(
        project, model_factory=_factory(ScriptedModel([])), settings=SETTINGS
    )
    await session.spawn_agent("worker", "coder")
    request = await session.pause("worker", force=True)
    await lk.close()  # before the idle agent's activation applied it

    lk, resumed = await _resume(store_url, session.session_id, ScriptedModel([]))
    try:
        assert resumed.agent("worker").status == "paused"
        assert len(_outcomes(await resumed.history(), request)) == 1
    finally:
        await lk.close()


async def test_a_superseded_pause_and_a_steer_a_cancel_consumed_get_their_outcomes(
    store_url: str, project: Path
) -> None:
    # Waiting for a permission answer, the worker reads no control (a pause waits for the
    # prompt's answer unless forced), so all four are on its lane when the process stops.
    write = Reply(tool_calls=[Call("file_write", {"path": "parser.py", "content": "x = 1\n"})])
    lk = await Loomkin.open(store_url)
    session = await lk.open_session(
        project, model_factory=_factory(ScriptedModel([write])), settings=SETTINGS
    )
    await session.spawn_agent("worker", "coder")
    await session.create_task("write the parser", assign_to="worker")
    await _asking(lk, session)
    first = await session.pause("worker")
    second = await session.pause("worker", mode="at_boundary")
    steer = await session.steer("worker", "never mind")
    cancel = await session.cancel("worker")
    await lk.close()

    lk, resumed = await _resume(store_url, session.session_id, ScriptedModel([]))
    try:
        log = await resumed.history()
        outcomes = {r: _outcomes(log, r) for r in (first, second, steer, cancel)}
        assert all(len(found) == 1 for found in outcomes.values()), outcomes
        (dropped_first,) = outcomes[first]
        assert isinstance(dropped_first, ControlDropped)
        assert (dropped_first.reason, dropped_first.by) == ("superseded", second)
        for consumed in (second, steer):
            (dropped,) = outcomes[consumed]
            assert isinstance(dropped, ControlDropped)
            assert (dropped.reason, dropped.by) == ("cancelled", cancel)
        assert isinstance(outcomes[cancel][0], ControlApplied)
        worker = resumed.agent("worker")
        assert worker.status == "idle"
        assert not any(
            isinstance(r.event, TranscriptAppended) and "never mind" in str(r.event.message)
            for r in log
        )
    finally:
        await lk.close()
