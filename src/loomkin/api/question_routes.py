"""HTTP routes of questions agents ask the user: list the open ones, answer one.

Each route is one call on the facade (:class:`loomkin.service.Session`). An unknown question
is a 404, one already answered or expired a 409, an empty answer a 422.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from loomkin.api.routes import Ctx  # noqa: TC001 - FastAPI reads the annotation at runtime
from loomkin.api.schemas import ErrorOut, QuestionAnswerIn, UserQuestionOut
from loomkin.api.views import user_questions

__all__ = ["question_router"]

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 421, 422)
}
question_router = APIRouter(responses=_ERRORS)
_QUESTIONS = "/api/sessions/{session_id}/questions"


@question_router.get(_QUESTIONS, response_model=list[UserQuestionOut], tags=["questions"])
async def list_questions(ctx: Ctx, session_id: str) -> list[UserQuestionOut]:
    """Questions agents asked the user that are still open, oldest first."""
    if (cluster := ctx.remote(session_id)) is not None:  # runs on a worker (serve --bus)
        return cluster.questions(session_id)
    return user_questions(ctx.loomkin.session(session_id))


@question_router.post(
    f"{_QUESTIONS}/{{question_id}}/answer", response_model=UserQuestionOut, tags=["questions"]
)
async def answer_question(
    ctx: Ctx, session_id: str, question_id: str, body: QuestionAnswerIn
) -> UserQuestionOut:
    """Answer a question an agent asked the user; the agent gets the answer as a message."""
    if (cluster := ctx.remote(session_id)) is not None:  # runs on a worker (serve --bus)
        return await cluster.answer_question(session_id, question_id, body.text)
    answered = await ctx.loomkin.session(session_id).answer_question(question_id, body.text)
    return UserQuestionOut(**asdict(answered))
