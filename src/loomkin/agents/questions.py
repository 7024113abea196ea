"""Open questions of agents (to agents, teams or the user), and the deadline of each.

:class:`QuestionBook` is a projection of ``QuestionAsked`` / ``QuestionForwarded`` /
``QuestionAnswered`` / ``QuestionExpired`` (a forward re-addresses the open question and
records the hop). It arms one timer per open question: for a question asked live, and, after
a restart, for every question the log left open (one whose deadline passed while the process
was down expires at once). An unanswered question therefore always ends with a clear message
to the asker instead of leaving it waiting forever.

A question asked of the user (``to_user``) is answered through the session's facade
(:meth:`QuestionBook.answer_by_user`). Closing a question (an answer by the user, an expiry)
happens under one lock, checked against the deadline, so a question never gets both an
answer and an expiry, nor two answers from the user.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from loomkin.core.events import (
    QuestionAnswered,
    QuestionAsked,
    QuestionExpired,
    QuestionForwarded,
)
from loomkin.errors import InvalidTransition, NotFound, ToolError, UserError
from loomkin.ids import QuestionId

if TYPE_CHECKING:
    from loomkin.coordination import MessageFactory
    from loomkin.core.events import RecordedEvent
    from loomkin.runtime.clock import Clock
    from loomkin.runtime.eventlog import EventLog
    from loomkin.runtime.supervisor import Supervisor

__all__ = ["QuestionBook"]


class QuestionBook:
    """Questions of one session that are still open, with their deadline timers."""

    def __init__(
        self,
        *,
        log: EventLog,
        clock: Clock,
        timers: Supervisor,
        messages: MessageFactory,
        timeout_s: float,
    ) -> None:
        self.timeout_s = timeout_s
        """How long a question stays open (``question_timeout_s``)."""
        self._log = log
        self._clock = clock
        self._timers = timers
        self._messages = messages
        self._open: dict[str, QuestionAsked] = {}
        self._user_closed: dict[str, str] = {}
        """How each closed question to the user ended: ``answered`` or ``expired``."""
        self._closing = asyncio.Lock()
        self._no_user_question = asyncio.Event()
        self._no_user_question.set()

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Fold a question event; arm the deadline of a question asked live."""
        event = recorded.event
        match event:
            case QuestionAsked(question_id=qid):
                self._open[qid] = event
                if event.to_user:
                    self._no_user_question.clear()
                if live:
                    self._arm(event)
            case QuestionForwarded(question_id=qid) if qid in self._open:
                self._open[qid] = dataclasses.replace(
                    self._open[qid], to_agent=event.to_agent, to_team=event.to_team, hops=event.hops
                )
            case QuestionAnswered(question_id=qid) | QuestionExpired(question_id=qid):
                closed = self._open.pop(qid, None)
                if closed is not None and closed.to_user:
                    how = "answered" if isinstance(event, QuestionAnswered) else "expired"
                    self._user_closed[qid] = how
                    if not self.user_questions():
                        self._no_user_question.set()
            case _:
                pass

    def caught_up(self) -> None:
        """Re-arm the deadline of every question the log left open."""
        for asked in self._open.values():
            self._arm(asked)

    def open_question(self, question_id: str) -> QuestionAsked:
        """Return the open question ``question_id``; a ToolError if it is unknown or closed."""
        try:
            return self._open[question_id]
        except KeyError:
            raise ToolError(
                f"There is no open question {question_id!r} (it was answered, expired, or never "
                "asked)."
            ) from None

    def is_open(self, question_id: str) -> bool:
        """True while the question has neither an answer nor an expiry."""
        return question_id in self._open

    def open_questions(self) -> list[QuestionAsked]:
        """Every open question, oldest first."""
        return list(self._open.values())

    def user_questions(self) -> list[QuestionAsked]:
        """Every open question asked of the user, oldest first."""
        return [q for q in self._open.values() if q.to_user]

    async def wait_user_questions(self) -> None:
        """Return once no question to the user is open (each ends by its deadline)."""
        await self._no_user_question.wait()

    def now(self) -> float:
        """The session clock's Unix time (what deadlines are measured against)."""
        return self._clock.now()

    async def answer_by_user(self, question_id: str, answer: str) -> QuestionAsked:
        """Journal the user's answer to ``question_id``; the asker gets it as a message.

        Raises:
            NotFound: no question ``question_id`` was asked of the user.
            InvalidTransition: it was answered already, or it expired.
            UserError: the answer is empty.
        """
        if not answer.strip():
            raise UserError("the answer is empty; write what the agent should know")
        async with self._closing:
            asked = self._user_question(question_id)
            await self._log.append(
                QuestionAnswered(
                    session_id=asked.session_id,
                    question_id=QuestionId(asked.question_id),
                    answerer=None,
                    answer=answer,
                ),
                self._messages.message(
                    "answer",
                    f"Answer to your question {asked.question!r}:\n{answer}",
                    to_agent=asked.asker,
                    from_name="user",
                    data={"question_id": asked.question_id},
                ),
            )
        return asked

    def _user_question(self, question_id: str) -> QuestionAsked:
        """The open question ``question_id`` to the user, if it can still be answered."""
        how = self._user_closed.get(question_id)
        if how is not None:
            raise InvalidTransition(f"question {question_id!r} was already {how}")
        asked = self._open.get(question_id)
        if asked is None or not asked.to_user:
            raise NotFound(f"no question {question_id!r} was asked of the user")
        if self._clock.now() >= asked.deadline:
            raise InvalidTransition(f"question {question_id!r} expired (its deadline passed)")
        return asked

    def _arm(self, asked: QuestionAsked) -> None:
        delay = max(0.0, asked.deadline - self._clock.now())
        who = "The user gave no answer" if asked.to_user else "No answer"

        async def expire() -> None:
            await asyncio.sleep(delay)
            async with self._closing:
                if not self.is_open(asked.question_id):
                    return
                await self._log.append(
                    QuestionExpired(
                        session_id=asked.session_id, question_id=QuestionId(asked.question_id)
                    ),
                    self._messages.message(
                        "answer",
                        f"{who} to your question {asked.question!r} within "
                        f"{self.timeout_s:.0f} s; "
                        "it has expired. Proceed without it or ask someone else.",
                        to_agent=asked.asker,
                    ),
                )

        self._timers.run(f"question:{asked.question_id}", expire)
