"""Open questions between agents: who asked what, and the deadline after which it expires.

The book is a projection of ``QuestionAsked`` / ``QuestionForwarded`` / ``QuestionAnswered`` /
``QuestionExpired`` (a forward re-addresses the open question and records the hop);
the session arms one timer per open question, so an unanswered question ends with a clear
message to the asker instead of leaving it waiting forever.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from loomkin.core.events import (
    Event,
    QuestionAnswered,
    QuestionAsked,
    QuestionExpired,
    QuestionForwarded,
)
from loomkin.errors import ToolError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["QuestionBook"]


class QuestionBook:
    """Questions of one session that are still open."""

    def __init__(self) -> None:
        self._open: dict[str, QuestionAsked] = {}
        self.on_asked: Callable[[QuestionAsked], None] | None = None
        """Called for each new open question (the session arms its deadline timer)."""

    def apply(self, event: Event) -> None:
        """Fold a question event into the book."""
        match event:
            case QuestionAsked(question_id=qid):
                self._open[qid] = event
            case QuestionForwarded(question_id=qid) if qid in self._open:
                self._open[qid] = dataclasses.replace(
                    self._open[qid], to_agent=event.to_agent, to_team=event.to_team, hops=event.hops
                )
            case QuestionAnswered(question_id=qid) | QuestionExpired(question_id=qid):
                self._open.pop(qid, None)
            case _:
                pass

    def asked(self, event: QuestionAsked) -> None:
        """A question was just asked live: arm its deadline."""
        if self.on_asked is not None:
            self.on_asked(event)

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
