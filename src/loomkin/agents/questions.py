"""Open questions between agents, and the deadline after which each one expires.

:class:`QuestionBook` is a projection of ``QuestionAsked`` / ``QuestionForwarded`` /
``QuestionAnswered`` / ``QuestionExpired`` (a forward re-addresses the open question and
records the hop). It arms one timer per open question: for a question asked live, and, after
a restart, for every question the log left open (one whose deadline passed while the process
was down expires at once). An unanswered question therefore always ends with a clear message
to the asker instead of leaving it waiting forever.
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
from loomkin.errors import ToolError
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

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Fold a question event; arm the deadline of a question asked live."""
        event = recorded.event
        match event:
            case QuestionAsked(question_id=qid):
                self._open[qid] = event
                if live:
                    self._arm(event)
            case QuestionForwarded(question_id=qid) if qid in self._open:
                self._open[qid] = dataclasses.replace(
                    self._open[qid], to_agent=event.to_agent, to_team=event.to_team, hops=event.hops
                )
            case QuestionAnswered(question_id=qid) | QuestionExpired(question_id=qid):
                self._open.pop(qid, None)
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

    def _arm(self, asked: QuestionAsked) -> None:
        delay = max(0.0, asked.deadline - self._clock.now())

        async def expire() -> None:
            await asyncio.sleep(delay)
            if not self.is_open(asked.question_id):
                return
            await self._log.append(
                QuestionExpired(
                    session_id=asked.session_id, question_id=QuestionId(asked.question_id)
                ),
                self._messages.message(
                    "answer",
                    f"No answer to your question {asked.question!r} within "
                    f"{self.timeout_s:.0f} s; "
                    "it has expired. Proceed without it or ask someone else.",
                    to_agent=asked.asker,
                ),
            )

        self._timers.run(f"question:{asked.question_id}", expire)
