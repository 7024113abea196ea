"""Questions agents ask the user: list them, answer them, hand them to a responder.

How this works and why:

* An agent asks with ``ask_question(to="user")``; the question is a ``QuestionAsked`` event
  with ``to_user`` and the session's question deadline (``question_timeout_s``). The session's
  question book holds the open ones; :class:`UserQuestion` is what the facade shows of one.
* The user answers through :meth:`Session.answer_question` (the HTTP API, the web page and
  ``loomkin questions answer`` call it): the answer is journaled and reaches the asker as a
  message. An unknown id is a :class:`~loomkin.errors.NotFound`; one already answered, or
  expired, an :class:`~loomkin.errors.InvalidTransition` naming which.
* :func:`answer_user_questions` hands every open question, and every new one, to a responder
  (a terminal prompt, a worker forwarding it over NATS), each until its deadline. It runs
  until cancelled and owns the tasks it starts. A responder that gives no answer (``None``,
  or too late) leaves the question to its deadline: the agent is then told nobody answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loomkin.core.events import QuestionAsked
from loomkin.errors import UserError

if TYPE_CHECKING:
    from loomkin.agents.questions import QuestionBook
    from loomkin.runtime.eventlog import Subscription
    from loomkin.service.records import Names

__all__ = ["QuestionResponder", "UserQuestion", "answer_user_questions", "user_question"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserQuestion:
    """A question an agent asked the user, still open."""

    question_id: str
    agent_id: str
    agent: str
    """The asking agent's name."""
    team: str
    """The asking agent's team's name."""
    question: str
    deadline: float
    """Unix seconds (the session's clock) after which it expires unanswered."""
    seconds_left: float
    """Seconds from when this record was made to the deadline (never negative)."""


QuestionResponder = Callable[[UserQuestion], Awaitable[str | None]]
"""Answers one question to the user: the text, or ``None`` to leave it to its deadline."""


class _Asked(Protocol):
    """What :func:`answer_user_questions` uses of a :class:`~loomkin.service.Session`."""

    def events(self, *, after: int | None = 0) -> Subscription: ...

    def questions_for_user(self) -> list[UserQuestion]: ...

    async def answer_question(self, question_id: str, text: str) -> UserQuestion: ...


def user_question(asked: QuestionAsked, names: Names, now: float) -> UserQuestion:
    """What the facade shows of ``asked``, at time ``now`` (the session clock's)."""
    agent = names.agent(asked.asker)
    team = names.team_name(asked.asker_team)
    return UserQuestion(
        question_id=asked.question_id,
        agent_id=asked.asker,
        agent=agent.name if agent is not None else asked.asker,
        team=team or asked.asker_team,
        question=asked.question,
        deadline=asked.deadline,
        seconds_left=max(0.0, asked.deadline - now),
    )


def open_user_questions(book: QuestionBook, names: Names) -> list[UserQuestion]:
    """The open questions to the user, oldest first."""
    now = book.now()
    return [user_question(q, names, now) for q in book.user_questions()]


async def answer_user_questions(session: _Asked, responder: QuestionResponder) -> None:
    """Hand every open question to the user, now and later, to ``responder``; until cancelled.

    Each question gets its own task, cancelled at the question's deadline; an answer given is
    journaled through :meth:`Session.answer_question`. A question answered meanwhile by
    someone else (another tab, the HTTP API) is simply not answered twice.
    """
    started: set[str] = set()
    async with asyncio.TaskGroup() as group:

        def start(question: UserQuestion) -> None:
            if question.question_id in started:
                return
            started.add(question.question_id)
            group.create_task(
                _answer_one(session, responder, question), name=f"ask-user:{question.question_id}"
            )

        # Subscribe before listing: a question asked in between is in one or the other.
        async with session.events(after=None) as events:
            for question in session.questions_for_user():
                start(question)
            async for recorded in events:
                event = recorded.event
                if isinstance(event, QuestionAsked) and event.to_user:
                    for question in session.questions_for_user():
                        start(question)


async def _answer_one(
    session: _Asked, responder: QuestionResponder, question: UserQuestion
) -> None:
    try:
        async with asyncio.timeout(question.seconds_left):
            text = await responder(question)
    except TimeoutError:
        return  # the question book expires it at the deadline and tells the agent
    except Exception as exc:
        # A responder that fails (a lost connection) leaves the question to its deadline: the
        # agent is told then; failing the whole session for it would be worse.
        logger.warning("question %s to the user: no answer: %s", question.question_id, exc)
        return
    if text is None or not text.strip():
        return
    try:
        await session.answer_question(question.question_id, text)
    except UserError as exc:  # answered elsewhere, or expired, meanwhile
        logger.info("question %s: the answer was not needed: %s", question.question_id, exc)
