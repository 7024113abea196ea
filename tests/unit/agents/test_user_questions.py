"""Questions an agent asks the user: the tool, the projection, the deadline, the facade.

An agent asks with ``ask_question(to="user")``; the user answers through ``Session``; the
asker reads the answer (or the expiry notice) as a message, as with questions to agents.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.chat import UserMessage
from loomkin.core.events import (
    QuestionAnswered,
    QuestionAsked,
    ToolCallCompleted,
    decode_event,
    encode_event,
)
from loomkin.errors import InvalidTransition, NotFound, UserError
from loomkin.service import Loomkin, Session, UserQuestion, answer_user_questions
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import FunctionModel, user_asker

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model

QUESTION = "Which colour should the button be?"


class Models:
    def __init__(self) -> None:
        self.models: dict[str, FunctionModel] = {}

    def __call__(self, _role: Role, name: str) -> Model:
        self.models[name] = self.models.get(name) or FunctionModel(
            user_asker(QUESTION), name=f"fn:{name}"
        )
        return self.models[name]

    def seen(self, name: str) -> list[str]:
        return [
            m.text
            for request in self.models[name].requests
            for m in request.messages
            if isinstance(m, UserMessage)
        ]


async def open_session(
    lk: Loomkin, project: Path, models: Models, timeout_s: float = 300.0
) -> Session:
    settings = SessionSettings(bootstrap_orienter=False, question_timeout_s=timeout_s)
    session = await lk.open_session(project, model_factory=models, settings=settings)
    await session.spawn_agent("ann", "coder")
    return session


async def asked(session: Session) -> UserQuestion:
    """Let ann ask, and return her open question."""
    await session.send("Make the button.", to="ann")
    # Follow the log (a store on disk commits from a thread: counting loop turns raced it).
    async with session.events(after=0) as events:
        async for recorded in events:
            if isinstance(recorded.event, QuestionAsked) and session.questions_for_user():
                return session.questions_for_user()[0]
    raise AssertionError("ann never asked")


async def test_an_agent_asks_the_user_and_gets_the_answer_as_a_message(
    lk: Loomkin, project: Path
) -> None:
    models = Models()
    session = await open_session(lk, project, models)
    question = await asked(session)
    assert (question.agent, question.question) == ("ann", QUESTION)
    assert 299 < question.seconds_left <= 300

    events = [r.event for r in await session.history()]
    (event,) = [e for e in events if isinstance(e, QuestionAsked)]
    assert event.to_user
    assert (event.to_agent, event.to_team) == (None, None)
    # No agent receives it: it is not a message.
    assert not any(e.kind == "message_sent" and QUESTION in str(e) for e in events)

    answered = await session.answer_question(question.question_id, "blue")
    assert answered.question_id == question.question_id
    await session.wait_idle()
    assert session.questions_for_user() == []
    assert f"[Answer from user]\nAnswer to your question {QUESTION!r}:\nblue" in models.seen("ann")
    (reply,) = [r.event for r in await session.history() if isinstance(r.event, QuestionAnswered)]
    assert (reply.answerer, reply.answer) == (None, "blue")


async def test_the_tool_result_says_who_was_asked_and_the_deadline(
    lk: Loomkin, project: Path
) -> None:
    models = Models()
    session = await open_session(lk, project, models, timeout_s=120.0)
    question = await asked(session)
    async with session.events() as events:
        async for recorded in events:
            if isinstance(recorded.event, ToolCallCompleted):
                result = recorded.event.result
                break
    assert result.startswith(f"Asked the user (question id {question.question_id})")
    assert "within 120 s" in result
    await session.answer_question(question.question_id, "red")
    await session.wait_idle()


async def test_bad_answers_are_refused_with_clear_errors(lk: Loomkin, project: Path) -> None:
    models = Models()
    session = await open_session(lk, project, models)
    question = await asked(session)
    with pytest.raises(NotFound, match="no question 'q_nope' was asked of the user"):
        await session.answer_question("q_nope", "blue")
    with pytest.raises(UserError, match="the answer is empty"):
        await session.answer_question(question.question_id, "   ")
    await session.answer_question(question.question_id, "blue")
    with pytest.raises(InvalidTransition, match="was already answered"):
        await session.answer_question(question.question_id, "green")
    await session.wait_idle()


async def test_an_agent_cannot_answer_a_question_asked_of_the_user(
    lk: Loomkin, project: Path
) -> None:
    from loomkin.agents.tools import CATALOGUE
    from loomkin.core.chat import ToolCall
    from loomkin.errors import ToolError

    models = Models()
    session = await open_session(lk, project, models)
    question = await asked(session)
    bob = await session.spawn_agent("bob", "coder")
    agent = session_runtime(session).agent(bob.agent_id)
    tool = CATALOGUE.get("answer_question")
    ctx = agent.tool_context(ToolCall(call_id="c1", name="answer_question", arguments=""))
    args = tool.parse_args(json.dumps({"question_id": question.question_id, "answer": "x"}))
    with pytest.raises(ToolError, match="asked of the user; only the user answers it"):
        await tool.run(args, ctx, agent.ctx)
    await session.answer_question(question.question_id, "blue")
    await session.wait_idle()


@pytest.mark.looptime
async def test_an_unanswered_question_expires_and_the_agent_is_told(
    lk: Loomkin, project: Path
) -> None:
    models = Models()
    session = await open_session(lk, project, models, timeout_s=60.0)
    question = await asked(session)
    idle = asyncio.create_task(session.wait_idle())
    await asyncio.sleep(30)
    assert not idle.done(), "the session waits for the user's answer until the deadline"
    await asyncio.wait_for(idle, 60)  # the deadline ends the wait
    assert session.questions_for_user() == []
    assert any(
        t.startswith("[Answer from system]\nThe user gave no answer to your question")
        and "within 60 s" in t
        for t in models.seen("ann")
    )
    with pytest.raises(InvalidTransition, match="was already expired"):
        await session.answer_question(question.question_id, "too late")


@pytest.mark.looptime
async def test_a_responder_answers_and_one_that_gives_up_leaves_it_to_the_deadline(
    lk: Loomkin, project: Path
) -> None:
    models = Models()
    session = await open_session(lk, project, models, timeout_s=60.0)
    given: list[UserQuestion] = []

    async def answer(question: UserQuestion) -> str | None:
        given.append(question)
        return "blue"

    responder = asyncio.create_task(answer_user_questions(session, answer))
    await session.send("Make the button.", to="ann")
    await session.wait_idle()
    responder.cancel()
    await asyncio.gather(responder, return_exceptions=True)
    assert [q.question for q in given] == [QUESTION]
    assert any(t.endswith(":\nblue") for t in models.seen("ann"))

    async def never(_question: UserQuestion) -> str | None:
        await asyncio.Event().wait()  # a prompt nobody answers: cut at the deadline
        return None

    await session.spawn_agent("bob", "coder")
    responder = asyncio.create_task(answer_user_questions(session, never))
    await session.send("Make another button.", to="bob")
    await session.wait_idle()
    responder.cancel()
    await asyncio.gather(responder, return_exceptions=True)
    assert sum("gave no answer" in t for t in models.seen("bob")) == 1


def test_a_logged_question_without_to_user_still_decodes() -> None:
    kind, version, text = encode_event(
        QuestionAsked(
            session_id="s",  # type: ignore[arg-type]
            question_id="q_1",  # type: ignore[arg-type]
            asker="a",  # type: ignore[arg-type]
            asker_team="t",  # type: ignore[arg-type]
            question="?",
        )
    )
    old = json.loads(text)
    del old["to_user"]  # as a log written before questions to the user were added
    event = decode_event(kind, version, json.dumps(old))
    assert isinstance(event, QuestionAsked)
    assert event.to_user is False


async def test_an_open_question_survives_a_restart_and_is_answered_after_it(
    tmp_path: Path, project: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    settings = SessionSettings(bootstrap_orienter=False, question_timeout_s=300.0)
    async with await Loomkin.open(store) as lk:
        session = await open_session(lk, project, Models())
        question = await asked(session)
        session_id = session.session_id
    models = Models()
    async with await Loomkin.open(store) as lk:
        session = await lk.resume_session(session_id, model_factory=models, settings=settings)
        (again,) = session.questions_for_user()
        assert (again.question_id, again.agent, again.question) == (
            question.question_id,
            "ann",
            QUESTION,
        )
        await session.answer_question(question.question_id, "blue")
        await session.wait_idle()
        assert any(t.endswith(":\nblue") for t in models.seen("ann"))


@pytest.mark.looptime
async def test_a_responder_still_asking_is_cancelled_when_the_question_is_answered_elsewhere(
    lk: Loomkin, project: Path
) -> None:
    models = Models()
    session = await open_session(lk, project, models, timeout_s=600.0)
    prompting = asyncio.Event()
    cancelled = asyncio.Event()

    async def prompt(_question: UserQuestion) -> str | None:
        prompting.set()
        try:
            await asyncio.Event().wait()  # the terminal prompt, waiting for a line
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return None

    responder = asyncio.create_task(answer_user_questions(session, prompt))
    question = await asked(session)
    await prompting.wait()
    await session.answer_question(question.question_id, "blue")  # from the web page, say
    await asyncio.wait_for(cancelled.wait(), 1)
    await session.wait_idle()
    assert not responder.done(), "it keeps serving later questions"
    responder.cancel()
    await asyncio.gather(responder, return_exceptions=True)
