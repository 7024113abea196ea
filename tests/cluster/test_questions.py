"""A question an agent on a worker asks the user crosses NATS to the client that runs it.

The worker forwards it on the session's question subject (request/reply until the question's
deadline); the client's handler answers. Unanswered, it expires at its deadline and the agent
is told. The tests wait on the session's events (``wait_done``), not on sleeps of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.events import MessageSent, QuestionAnswered, QuestionAsked, QuestionExpired
from loomkin.testing.models import user_askers

from .coders import options, served, start_worker

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from loomkin.cluster import ClusterClient, QuestionAsk, Worker
    from loomkin.core.events import Event

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

QUESTION = "Which colour should the button be?"


async def start(bus_url: str, cluster: str, pg_url: str, timeout_s: float) -> Worker:
    """A worker whose agents each ask the user :data:`QUESTION` once."""
    settings = SessionSettings(bootstrap_orienter=False, question_timeout_s=timeout_s)
    hosting = options(pg_url, factory=user_askers(QUESTION), settings=settings, prepare=None)
    return await start_worker(bus_url, cluster, hosting)


async def settled(worker: Worker) -> None:
    """Wait until ``worker`` finished hosting (runtime and store closed) before closing it.

    A close while a finished session is still closing could cut that short.
    """
    await asyncio.wait_for(worker.hosting_nothing(), 30)


async def answer_until_done(
    client: ClusterClient,
    worker: Worker,
    session_id: str,
    handler: Callable[[QuestionAsk], Awaitable[str | None]],
) -> None:
    """Answer the session's questions with ``handler`` until it is done and ``worker`` idle."""
    sub = await client.answer_questions(session_id, handler)
    try:
        await asyncio.wait_for(client.wait_done(session_id), 60)
        await settled(worker)
    finally:
        await sub.unsubscribe()


async def events(client: ClusterClient, session_id: str) -> list[Event]:
    return [r.event for r in await client.history(session_id)]


async def test_the_client_answers_a_question_an_agent_on_a_worker_asks_the_user(
    bus_url: str, cluster: str, pg_url: str, client: ClusterClient, project: Path
) -> None:
    worker = await start(bus_url, cluster, pg_url, timeout_s=60.0)
    try:
        asks: list[QuestionAsk] = []

        async def handler(ask: QuestionAsk) -> str:
            asks.append(ask)
            return "blue"

        session_id, _ = await client.start_session(str(project), "Make the button.")
        await answer_until_done(client, worker, session_id, handler)
    finally:
        await worker.close()

    assert [(a.agent, a.question) for a in asks] == [("concierge", QUESTION)]
    assert 0 < asks[0].seconds_left <= 60
    history = await events(client, session_id)
    (asked,) = [e for e in history if isinstance(e, QuestionAsked)]
    assert asked.to_user
    (answered,) = [e for e in history if isinstance(e, QuestionAnswered)]
    assert (answered.question_id, answered.answerer, answered.answer) == (
        asked.question_id,
        None,
        "blue",
    )
    replies = [e for e in history if isinstance(e, MessageSent) and e.msg_type == "answer"]
    assert [(m.to_agent, m.from_name) for m in replies] == [(asked.asker, "user")]
    assert replies[0].content.endswith(":\nblue")
    assert not any(isinstance(e, QuestionExpired) for e in history)


async def test_an_unanswered_question_times_out_at_its_deadline_and_the_agent_is_told(
    bus_url: str, cluster: str, pg_url: str, client: ClusterClient, project: Path
) -> None:
    worker = await start(bus_url, cluster, pg_url, timeout_s=2.0)
    try:
        asks: list[QuestionAsk] = []

        async def silent(ask: QuestionAsk) -> str | None:
            asks.append(ask)
            await asyncio.Event().wait()  # a prompt nobody answers: cut at the deadline
            return None

        session_id, _ = await client.start_session(str(project), "Make the button.")
        await answer_until_done(client, worker, session_id, silent)
    finally:
        await worker.close()

    assert [a.question for a in asks] == [QUESTION]
    history = await events(client, session_id)
    (asked,) = [e for e in history if isinstance(e, QuestionAsked)]
    assert [e.question_id for e in history if isinstance(e, QuestionExpired)] == [asked.question_id]
    assert not any(isinstance(e, QuestionAnswered) for e in history)
    (notice,) = [e for e in history if isinstance(e, MessageSent) and e.msg_type == "answer"]
    assert notice.to_agent == asked.asker
    assert notice.content.startswith(f"The user gave no answer to your question {QUESTION!r}")


async def test_a_question_left_open_by_a_worker_that_left_is_asked_again_by_the_next(
    bus_url: str, cluster: str, pg_url: str, client: ClusterClient, project: Path
) -> None:
    first = await start(bus_url, cluster, pg_url, timeout_s=60.0)
    second: Worker | None = None
    try:
        session_id, worker_id = await client.start_session(str(project), "Make the button.")
        assert worker_id == first.worker_id
        async with contextlib.aclosing(client.follow(session_id)) as followed:
            async for recorded in followed:
                if isinstance(recorded.event, QuestionAsked):
                    break
        second = await start(bus_url, cluster, pg_url, timeout_s=60.0)
        await first.close()  # hands the session over with the question still open
        asks: list[QuestionAsk] = []

        async def handler(ask: QuestionAsk) -> str:
            asks.append(ask)
            return "green"

        await answer_until_done(client, second, session_id, handler)
    finally:
        await first.close()
        if second is not None:
            await second.close()

    assert [a.question for a in asks] == [QUESTION]
    assert (await client.placement(session_id)).hosts == (first.worker_id, second.worker_id)
    history = await events(client, session_id)
    assert [e.answer for e in history if isinstance(e, QuestionAnswered)] == ["green"]
    assert not any(isinstance(e, QuestionExpired) for e in history)


async def test_a_question_asked_again_gets_the_answer_already_given(
    bus_url: str, client: ClusterClient
) -> None:
    from loomkin.cluster.bus import connect

    asks: list[QuestionAsk] = []

    async def handler(ask: QuestionAsk) -> str:
        asks.append(ask)
        return f"answer {len(asks)}"

    sub = await client.answer_questions("s_1", handler)
    nc = await connect(bus_url)
    try:
        subject = client.names.session_question("s_1")
        ask = {"question_id": "q_1", "agent": "ann", "question": "?", "seconds_left": 30}
        replies = []
        for question_id in ("q_1", "q_1", "q_2"):
            payload = json.dumps({**ask, "question_id": question_id}).encode()
            replies.append(json.loads((await nc.request(subject, payload, timeout=30)).data))
    finally:
        await nc.close()
        await sub.unsubscribe()
    assert replies == [{"answer": "answer 1"}, {"answer": "answer 1"}, {"answer": "answer 2"}]
    assert [a.question_id for a in asks] == ["q_1", "q_2"]


async def test_serve_with_bus_shows_a_workers_question_and_answers_it_from_the_page(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    worker = await start(bus_url, cluster, pg_url, timeout_s=60.0)
    try:
        async with served(bus_url, cluster, pg_url, project) as (http, view, client):
            session_id, _ = await client.start_session(str(project), "Go.", approve_all=True)
            question_id = await asyncio.wait_for(view.wait_question(session_id), 60)
            base = f"/api/sessions/{session_id}"
            listed = (await http.get(f"{base}/questions")).json()
            assert [(q["question_id"], q["agent"], q["question"]) for q in listed] == [
                (question_id, "concierge", QUESTION)
            ]
            assert 0 < listed[0]["seconds_left"] <= 60
            detail = (await http.get(base)).json()
            assert [q["question_id"] for q in detail["questions"]] == [question_id]
            assert detail["questions"][0]["agent_id"]  # named after the log's agent
            gone = await http.post(f"{base}/questions/q_gone/answer", json={"text": "x"})
            assert gone.status_code == 404
            url = f"{base}/questions/{question_id}/answer"
            answered = await http.post(url, json={"text": "blue"})
            assert answered.status_code == 200, answered.text
            assert answered.json()["question_id"] == question_id
            assert answered.json()["question"] == QUESTION
            again = await http.post(url, json={"text": "red"})
            assert again.status_code == 404  # answered: it no longer waits here
            await asyncio.wait_for(client.wait_done(session_id), 60)
            await settled(worker)
            history = await events(client, session_id)
    finally:
        await worker.close()
    assert [e.answer for e in history if isinstance(e, QuestionAnswered)] == ["blue"]
