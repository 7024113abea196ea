"""HTTP routes of questions agents ask the user: list, answer; bad input is a clear 4xx."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from loomkin.agents import SessionSettings
from loomkin.api import create_app
from loomkin.core.events import QuestionAsked
from loomkin.service import Loomkin
from loomkin.testing.models import user_askers

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

QUESTION = "Which database should I use?"


async def test_questions_are_listed_and_answered_over_http(tmp_path: Path) -> None:
    settings = SessionSettings(bootstrap_orienter=False, question_timeout_s=600.0)
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            tmp_path, model_factory=user_askers(QUESTION), settings=settings
        )
        await session.spawn_agent("ann", "coder")
        async with session.events(after=None) as events:
            await session.send("Build the store.", to="ann")
            async for recorded in events:
                if isinstance(recorded.event, QuestionAsked):
                    break
        app = create_app(lk)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                base = f"/api/sessions/{session.session_id}"
                listed = await c.get(f"{base}/questions")
                assert listed.status_code == 200, listed.text
                (question,) = listed.json()
                assert (question["agent"], question["question"]) == ("ann", QUESTION)
                assert 0 < question["seconds_left"] <= 600
                detail = (await c.get(base)).json()
                assert [q["question_id"] for q in detail["questions"]] == [question["question_id"]]

                url = f"{base}/questions/{question['question_id']}/answer"
                for body in ({}, {"text": ""}, {"text": "   "}, {"text": "pg", "extra": 1}):
                    refused = await c.post(url, json=body)
                    assert refused.status_code == 422, body
                    assert refused.json()["detail"].startswith("invalid request")
                missing = await c.post(f"{base}/questions/q_nope/answer", json={"text": "pg"})
                assert missing.status_code == 404
                assert "no question 'q_nope' was asked of the user" in missing.json()["detail"]
                nobody = await c.post("/api/sessions/s_nope/questions/q/answer", json={"text": "x"})
                assert nobody.status_code == 404

                answered = await c.post(url, json={"text": "PostgreSQL"})
                assert answered.status_code == 200, answered.text
                assert answered.json()["question_id"] == question["question_id"]
                again = await c.post(url, json={"text": "SQLite"})
                assert again.status_code == 409
                assert "was already answered" in again.json()["detail"]
                assert (await c.get(f"{base}/questions")).json() == []
                rows = (await c.get(f"{base}/feed")).json()["rows"]
                summaries = [r["summary"] for r in rows if r["type"] in ("question", "answer")]
                assert summaries == [
                    f"ann asks the user: {QUESTION}",
                    "the user answered: PostgreSQL",
                ]
        await session.wait_idle()
        history = [r.event for r in await session.history()]
        assert any(
            e.kind == "message_sent" and "PostgreSQL" in getattr(e, "content", "") for e in history
        )
