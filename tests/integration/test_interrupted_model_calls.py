"""A model call the process stopped in is closed and made again when the session resumes.

The "kill" is a runtime closed while the model's stream is silent (SQLite store): the log
keeps a ``ModelCallStarted`` with no end, as after a ``kill -9``. A fresh runtime resumes the
session against the same store.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.agents.modelcall import INTERRUPTED
from loomkin.api.feed import feed_row
from loomkin.cli.progress import describe
from loomkin.core.chat import UserMessage, message_to_json
from loomkin.core.events import (
    LoopFinished,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
    TranscriptAppended,
)
from loomkin.ids import AgentId, SessionId
from loomkin.llm.retry import RetryPolicy
from loomkin.service import Loomkin
from loomkin.testing.internals import event_log
from loomkin.testing.models import Reply, ScriptedModel, Stall

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.core.events import Event
    from loomkin.llm.model import Model
    from loomkin.service import Session


def only(model: Model) -> object:
    idle = ScriptedModel([], name="scripted:idle")

    def factory(_role: Role, name: str) -> Model:
        return model if name == "worker" else idle

    return factory


async def wait_call_started(session: Session) -> ModelCallStarted:
    async with session.events(after=0) as sub:
        async for recorded in sub:
            if isinstance(recorded.event, ModelCallStarted):
                return recorded.event
    raise AssertionError("the subscription ended")


async def killed_mid_call(
    tmp_path: Path,
    settings: SessionSettings,
    *,
    extra: Sequence[str] = (),
    pause: bool = False,
) -> tuple[str, str, ModelCallStarted]:
    """Start a session whose worker's model call never answers, and stop the process in it."""
    project = tmp_path / "project"
    project.mkdir()
    url = f"sqlite:///{tmp_path}/s.db"
    async with await Loomkin.open(url) as lk:
        session = await lk.open_session(
            project,
            model_factory=only(ScriptedModel([Stall()])),  # type: ignore[arg-type]
            settings=settings,
        )
        worker = await session.spawn_agent("worker", "coder")
        await session.send("say hello", to="worker")
        started = await wait_call_started(session)
        if pause:  # asked at the boundary: it waits for the call to end, which it never does
            await session.pause("worker", mode="at_boundary")
        for text in extra:  # what the transcript gained after the call began
            message = message_to_json(UserMessage(source="system", text=text))
            await event_log(lk).append(
                TranscriptAppended(
                    session_id=SessionId(session.session_id),
                    agent_id=AgentId(worker.agent_id),
                    message=message,
                )
            )
        return url, session.session_id, started


def _same_json(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def open_calls(events: list[Event]) -> list[str]:
    """Model calls started and never ended (completed, or failed with no retry)."""
    started = [e.call_id for e in events if isinstance(e, ModelCallStarted)]
    ended = {
        e.call_id
        for e in events
        if isinstance(e, ModelCallCompleted)
        or (isinstance(e, ModelCallFailed) and not e.will_retry)
    }
    return [c for c in started if c not in ended]


def ends_of(events: list[Event], call_id: str) -> list[Event]:
    return [
        e
        for e in events
        if isinstance(e, ModelCallCompleted | ModelCallFailed) and e.call_id == call_id
    ]


async def resume(
    url: str, session_id: str, model: Model, settings: SessionSettings | None = None
) -> list[Event]:
    async with await Loomkin.open(url) as lk:
        session = await lk.resume_session(
            session_id,
            model_factory=only(model),  # type: ignore[arg-type]
            settings=settings,
        )
        await lk.wait_idle()
        return [r.event for r in await session.history()]


async def test_the_interrupted_call_is_closed_and_retried_as_the_same_call(
    tmp_path: Path,
) -> None:
    url, session_id, started = await killed_mid_call(
        tmp_path, SessionSettings(bootstrap_orienter=False)
    )
    model = ScriptedModel([Reply(text="hello")])
    events = await resume(url, session_id, model)

    assert open_calls(events) == []
    calls = [e for e in events if isinstance(e, ModelCallStarted)]
    assert [(c.call_id, c.iteration) for c in calls] == [(started.call_id, 1)]
    failed, completed = ends_of(events, started.call_id)
    assert isinstance(failed, ModelCallFailed)
    assert (failed.error, failed.attempt, failed.will_retry, failed.delay_s) == (
        INTERRUPTED,
        1,
        True,
        0.0,
    )
    assert isinstance(completed, ModelCallCompleted)
    assert completed.text == "hello"
    # The retry sent exactly the request journaled for the call.
    (request,) = model.requests
    assert _same_json(request.to_json(), started.request)
    assert [e.outcome for e in events if isinstance(e, LoopFinished)] == ["final"]


async def test_the_interrupted_call_does_not_count_twice_against_max_iterations(
    tmp_path: Path,
) -> None:
    settings = SessionSettings(bootstrap_orienter=False, max_iterations=1)
    url, session_id, started = await killed_mid_call(tmp_path, settings)
    events = await resume(url, session_id, ScriptedModel([Reply(text="hello")]), settings)

    # Not "max_iterations": the retried call is the iteration the interrupted one was.
    assert [e.outcome for e in events if isinstance(e, LoopFinished)] == ["final"]
    assert [e.iteration for e in events if isinstance(e, ModelCallStarted)] == [1]
    assert open_calls(events) == []
    assert isinstance(ends_of(events, started.call_id)[-1], ModelCallCompleted)


async def test_a_call_whose_request_changed_ends_and_a_new_call_of_the_same_iteration_follows(
    tmp_path: Path,
) -> None:
    url, session_id, started = await killed_mid_call(
        tmp_path, SessionSettings(bootstrap_orienter=False), extra=["(read after the call began)"]
    )
    model = ScriptedModel([Reply(text="hello")])
    events = await resume(url, session_id, model)

    assert open_calls(events) == []
    calls = [e for e in events if isinstance(e, ModelCallStarted)]
    assert [c.iteration for c in calls] == [1, 1]
    retry, final = ends_of(events, started.call_id)
    assert isinstance(retry, ModelCallFailed)
    assert retry.will_retry
    assert isinstance(final, ModelCallFailed)
    assert not final.will_retry
    assert final.error == f"{INTERRUPTED}; made again as a new call, with what changed since"
    (completed,) = ends_of(events, calls[1].call_id)
    assert isinstance(completed, ModelCallCompleted)
    assert model.requests[0].messages[-1] == UserMessage(
        source="system", text="(read after the call began)"
    )


async def test_a_pause_waiting_at_the_kill_holds_the_retry_back_until_resumed(
    tmp_path: Path,
) -> None:
    url, session_id, started = await killed_mid_call(
        tmp_path, SessionSettings(bootstrap_orienter=False), pause=True
    )
    model = ScriptedModel([Reply(text="hello")])
    async with await Loomkin.open(url) as lk:
        session = await lk.resume_session(session_id, model_factory=only(model))  # type: ignore[arg-type]
        await lk.wait_idle()
        assert session.agent("worker").status == "paused"
        assert model.requests == []
        # Paused, the call shows as failed and to be retried, not as running.
        (retry,) = ends_of([r.event for r in await session.history()], started.call_id)
        assert isinstance(retry, ModelCallFailed)
        assert (retry.error, retry.will_retry) == (INTERRUPTED, True)
        await session.resume("worker")
        await lk.wait_idle()
        events = [r.event for r in await session.history()]
    assert open_calls(events) == []
    assert len([e for e in events if isinstance(e, ModelCallStarted)]) == 1
    retry, completed = ends_of(events, started.call_id)
    assert isinstance(completed, ModelCallCompleted)
    assert [e.outcome for e in events if isinstance(e, LoopFinished)] == ["final"]


async def test_a_cancel_before_the_retry_ends_the_interrupted_call(tmp_path: Path) -> None:
    url, session_id, started = await killed_mid_call(
        tmp_path, SessionSettings(bootstrap_orienter=False), pause=True
    )
    model = ScriptedModel([Reply(text="hello")])
    async with await Loomkin.open(url) as lk:
        session = await lk.resume_session(session_id, model_factory=only(model))  # type: ignore[arg-type]
        await lk.wait_idle()
        await session.cancel("worker")
        await lk.wait_idle()
        events = [r.event for r in await session.history()]
    assert model.requests == []
    assert open_calls(events) == []
    retry, dropped = ends_of(events, started.call_id)
    assert isinstance(retry, ModelCallFailed)
    assert retry.will_retry
    assert isinstance(dropped, ModelCallFailed)
    assert not dropped.will_retry
    assert dropped.error == f"{INTERRUPTED}; cancelled by user"


async def test_an_interruption_never_uses_up_the_calls_retries(tmp_path: Path) -> None:
    # Killed from outside, not failed by the provider: with no retries allowed the call is
    # still made again (giving it up left a claimed task that never finished).
    settings = SessionSettings(bootstrap_orienter=False, model_retry=RetryPolicy(max_retries=0))
    url, session_id, started = await killed_mid_call(tmp_path, settings)
    model = ScriptedModel([Reply(text="hello")])
    events = await resume(url, session_id, model, settings)

    assert len(model.requests) == 1
    assert open_calls(events) == []
    failed, completed = ends_of(events, started.call_id)
    assert isinstance(failed, ModelCallFailed)
    assert (failed.error, failed.attempt, failed.will_retry) == (INTERRUPTED, 1, True)
    assert isinstance(completed, ModelCallCompleted)
    assert [e.outcome for e in events if isinstance(e, LoopFinished)] == ["final"]


async def test_the_feed_and_the_terminal_show_the_interrupted_attempt_as_retried_now(
    tmp_path: Path,
) -> None:
    url, session_id, _started = await killed_mid_call(
        tmp_path, SessionSettings(bootstrap_orienter=False)
    )
    async with await Loomkin.open(url) as lk:
        session = await lk.resume_session(
            session_id,
            model_factory=only(ScriptedModel([Reply(text="hello")])),  # type: ignore[arg-type]
        )
        await lk.wait_idle()
        (recorded,) = [r for r in await session.history() if isinstance(r.event, ModelCallFailed)]
        row = feed_row(recorded, session.names())
        assert isinstance(recorded.event, ModelCallFailed)
        line = describe(recorded.event, session)
    assert row is not None
    assert (row.type, row.actor) == ("retry", "worker")
    assert row.summary == f"model call failed (attempt 1), retrying now: {INTERRUPTED}"
    assert (
        line
        == f"[yellow]retry[/] worker: model call failed (attempt 1), retrying now: {INTERRUPTED}"
    )


async def test_a_call_resumed_on_another_model_is_made_again_as_a_new_call(
    tmp_path: Path,
) -> None:
    url, session_id, started = await killed_mid_call(
        tmp_path, SessionSettings(bootstrap_orienter=False)
    )
    model = ScriptedModel([Reply(text="hello")], name="scripted:other")
    events = await resume(url, session_id, model)

    assert open_calls(events) == []
    calls = [e for e in events if isinstance(e, ModelCallStarted)]
    assert [(c.model, c.iteration) for c in calls] == [(started.model, 1), ("scripted:other", 1)]
    assert started.model != "scripted:other"
    *_, dropped = ends_of(events, started.call_id)
    assert isinstance(dropped, ModelCallFailed)
    assert not dropped.will_retry
    (completed,) = ends_of(events, calls[1].call_id)
    assert isinstance(completed, ModelCallCompleted)
