"""What a worker answers on a session's action subject, and what the asker makes of it.

``answer_action`` is the worker's half of the request/reply: it checks the action, runs it
on the session and answers with the result, or with a refusal whose code the asking side
turns back into the facade's error (``refusal``). Here on an in-memory session, no NATS.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.cluster.actions import (
    ClaimTask,
    RaiseBudgets,
    SessionNotHosted,
    ShowBudgets,
    answer_action,
    refusal,
)
from loomkin.errors import InvalidTransition, LoomkinError, NotFound, UserError
from loomkin.service import Loomkin
from loomkin.testing.models import FunctionModel, Reply

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from loomkin.service import Session


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    def factory(_role: object, name: str) -> FunctionModel:
        return FunctionModel(lambda _request: Reply(text="Noted."), name=f"scripted:{name}")

    async with await Loomkin.open("memory:") as loomkin:
        yield await loomkin.open_session(
            tmp_path, model_factory=factory, settings=SessionSettings(bootstrap_orienter=False)
        )


def parsed(reply: bytes) -> dict[str, object]:
    out = json.loads(reply)
    assert isinstance(out, dict)
    return out


async def test_an_action_is_applied_and_its_result_sent_back(session: Session) -> None:
    action = RaiseBudgets.of(changes={"session_usd": 2, "agent_tokens": 500})
    reply = parsed(await answer_action(session, action.model_dump_json().encode()))
    assert reply["ok"] is True
    result = reply["result"]
    assert isinstance(result, dict)
    assert result["limits"]["session_usd"] == 2.0  # type: ignore[index]
    assert result["limits"]["agent_tokens"] == 500  # type: ignore[index]
    assert [b.limit_usd for b in session.budgets() if b.scope == "session"] == [2.0]
    shown = parsed(await answer_action(session, ShowBudgets().model_dump_json().encode()))
    assert shown["result"] == json.loads(json.dumps(result["budgets"]))


async def test_refusals_keep_their_kind(session: Session) -> None:
    await session.spawn_agent("ann", "coder")
    started = await session.create_task("started", assign_to="ann")
    await session.wait_idle()  # ann took it up (and answered): not claimable any more
    cases = [
        (ClaimTask.of(task_id="task_nope", agent="ann"), "not_found"),
        (ClaimTask.of(task_id=started, agent="zed"), "not_found"),
        (ClaimTask.of(task_id=started, agent="ann"), "refused"),
        (RaiseBudgets.of(changes={}), "invalid"),
        (RaiseBudgets.of(changes={"agent_tokens": 1.5}), "invalid"),
    ]
    for action, code in cases:
        reply = parsed(await answer_action(session, action.model_dump_json().encode()))
        assert (reply["ok"], reply["code"]) == (False, code), (action, reply)
        assert reply["error"]


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"kind": "drop_tables"}',
        b'{"kind": "budgets", "extra": 1}',
        b'{"kind": "raise_budgets", "changes": {"session_usd": true}}',
        b'{"kind": "raise_budgets", "changes": {"wallet": 1}}',
        b'{"kind": "claim_task", "task_id": "", "agent": "ann"}',
    ],
)
async def test_what_is_not_an_action_is_refused_before_the_session_sees_it(
    session: Session, data: bytes
) -> None:
    reply = parsed(await answer_action(session, data))
    assert (reply["ok"], reply["code"]) == (False, "invalid")
    assert str(reply["error"]).startswith("not a session action")
    assert not any(b.limit_usd for b in session.budgets())


async def test_no_session_yet_and_a_reply_too_large_for_the_bus(session: Session) -> None:
    asked = ShowBudgets().model_dump_json().encode()
    early = parsed(await answer_action(None, asked))
    assert (early["ok"], early["code"]) == (False, "not_hosted")
    large = parsed(await answer_action(session, asked, max_bytes=20))
    assert (large["ok"], large["code"]) == (False, "failed")
    assert "larger than the bus carries (20 bytes)" in str(large["error"])


def test_a_refusal_is_raised_as_the_facade_raised_it() -> None:
    assert isinstance(refusal("not_found", "x"), NotFound)
    assert isinstance(refusal("refused", "x"), InvalidTransition)
    assert isinstance(refusal("not_hosted", "x"), SessionNotHosted)
    assert type(refusal("invalid", "x")) is UserError
    assert type(refusal("failed", "x")) is LoomkinError
    assert type(refusal(None, "x")) is UserError  # an older worker's answer without a code


def test_building_an_invalid_action_is_a_user_error() -> None:
    with pytest.raises(UserError, match="invalid ClaimTask action: task_id"):
        ClaimTask.of(task_id="t" * 300, agent="ann")
    with pytest.raises(UserError, match="agent"):
        ClaimTask.of(task_id="t_1")
