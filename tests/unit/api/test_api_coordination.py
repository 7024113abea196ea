"""HTTP routes of negotiations and budgets: list, resolve, show, raise; bad bodies refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from loomkin.agents import SessionSettings
from loomkin.api import create_app
from loomkin.coordination.negotiation import NegotiationSettings
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.ids import SessionId, TeamId
from loomkin.service import Loomkin
from loomkin.tasks import WorkerRef
from loomkin.testing.internals import task_service
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]


async def _decliner(request: ModelRequest) -> Reply:
    briefed = any(
        isinstance(m, UserMessage) and m.text.startswith("[Task assigned]")
        for m in request.messages
    )
    declined = any(isinstance(m, ToolResultMessage) for m in request.messages)
    if briefed and not declined:
        return Reply(tool_calls=[Call("task_decline", {"reason": "not my kind of work"})])
    return Reply(text="Waiting.")


def _factory(_role: Role, name: str) -> Model:
    if name == "ann":
        return FunctionModel(_decliner, name="scripted:ann")
    return FunctionModel(lambda _r: Reply(text="Noted."), name=f"scripted:{name}")


async def test_negotiations_and_budgets_over_http(tmp_path: Path) -> None:
    # Virtual time jumps whenever the loop waits: windows long enough to outlast the test.
    long = NegotiationSettings(window_s=3600.0, counter_window_s=3600.0)
    settings = SessionSettings(bootstrap_orienter=False, negotiation=long)
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(tmp_path, model_factory=_factory, settings=settings)
        await session.spawn_agent("lea", "lead")
        ann = await session.spawn_agent("ann", "coder")
        bob = await session.spawn_agent("bob", "coder")
        # The lead assigns (as team_assign does): the objection waits for the lead.
        task_id = await task_service(lk).create(
            session_id=SessionId(session.session_id),
            team_id=TeamId(ann.team_id),
            title="implement the lexer",
            assign_to=WorkerRef(agent_id=ann.agent_id, name="ann", team_id=TeamId(ann.team_id)),  # type: ignore[arg-type]
            assigned_by="lea",
        )
        await lk.wait_idle()
        app = create_app(lk)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                base = f"/api/sessions/{session.session_id}"
                listed = (await c.get(f"{base}/negotiations?open=true")).json()
                assert [(n["agent_name"], n["status"], n["response"]) for n in listed] == [
                    ("ann", "countered", "decline")
                ]
                url = f"{base}/negotiations/{task_id}/resolve"
                for body in ({"resolution": "maybe"}, {}, {"resolution": "accept", "x": 1}):
                    assert (await c.post(url, json=body)).status_code == 422, body
                missing = await c.post(
                    f"{base}/negotiations/task_nope/resolve", json={"resolution": "override"}
                )
                assert missing.status_code == 404
                moved = await c.post(url, json={"resolution": "reassign", "agent": "bob"})
                assert moved.status_code == 200, moved.text
                assert "reassigned to bob" in moved.json()["result"]
                assert session.task(task_id).owner_id == bob.agent_id
                again = await c.post(url, json={"resolution": "override"})
                assert again.status_code == 422
                assert "no objection waiting" in again.json()["detail"]

                shown = (await c.get(f"{base}/budgets")).json()
                assert shown[0]["scope"] == "session"
                for body in ({"session_usd": -1}, {"nonsense": 1}, {"agent_tokens": "many"}):
                    assert (await c.post(f"{base}/budgets", json=body)).status_code == 422
                raised = await c.post(f"{base}/budgets", json={"session_usd": 2.5})
                assert raised.status_code == 200, raised.text
                answer = raised.json()
                assert answer["limits"]["session_usd"] == 2.5
                assert answer["resumed"] == []
                assert answer["budgets"][0]["limit_usd"] == 2.5
