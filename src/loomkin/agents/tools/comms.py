"""Messaging tools: peer messages (within and across teams) and questions with answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from loomkin.core.events import QuestionAnswered, QuestionAsked
from loomkin.errors import ToolError
from loomkin.ids import QuestionId, new_id
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent

__all__ = ["COMMS_TOOLS"]


class PeerMessageArgs(ToolArgs):
    """Arguments of ``peer_message``."""

    to: str = Field(
        description='Recipient: "name" (your team), "team/name" (another team\'s agent), or '
        '"team:<team name>" for every agent of a team.'
    )
    content: str = Field(description="The message.")


@tool(name="peer_message", category="coordination", args=PeerMessageArgs)
async def peer_message(args: PeerMessageArgs, ctx: ToolContext, deps: Agent) -> str:
    """Send a message to another agent or a whole team (it does not wait for a reply)."""
    session = deps.session
    if args.to.startswith("team:"):
        team_id = session.resolve_team(args.to.removeprefix("team:"))
        session.check_comms(deps.team_id, team_id)
        event = session.message_event(
            msg_type="peer_message", content=args.content, to_team=team_id, sender=deps
        )
        await session.log.append(event)
        return f"Sent to every agent of team {args.to.removeprefix('team:')}."
    target = session.agent(args.to, None if "/" in args.to else deps.team_id)
    if target is deps:
        raise ToolError("You cannot message yourself.")
    session.check_comms(deps.team_id, target.team_id)
    await session.log.append(
        session.message_event(
            msg_type="peer_message", content=args.content, to_agent=target.agent_id, sender=deps
        )
    )
    return f"Sent to {args.to}."


class AskQuestionArgs(ToolArgs):
    """Arguments of ``ask_question``."""

    question: str
    to: str = Field(description='Who: "name", "team/name", or "team:<team name>".')


@tool(name="ask_question", category="coordination", args=AskQuestionArgs)
async def ask_question(args: AskQuestionArgs, ctx: ToolContext, deps: Agent) -> str:
    """Ask another agent (or team) a question; the answer arrives as a message later."""
    session = deps.session
    question_id = QuestionId(new_id("q_"))
    to_team = None
    to_agent = None
    if args.to.startswith("team:"):
        to_team = session.resolve_team(args.to.removeprefix("team:"))
        session.check_comms(deps.team_id, to_team)
    else:
        target = session.agent(args.to, None if "/" in args.to else deps.team_id)
        session.check_comms(deps.team_id, target.team_id)
        to_agent = target.agent_id
    asked = QuestionAsked(
        session_id=ctx.session_id,
        question_id=question_id,
        asker=ctx.agent_id,
        asker_team=ctx.team_id,
        question=args.question,
        to_agent=to_agent,
        to_team=to_team,
        deadline=session.clock.now() + session.settings.question_timeout_s,
    )
    text = f"{args.question}\n(question id {question_id}; reply with answer_question)"
    message = session.message_event(
        msg_type="question",
        content=text,
        to_agent=to_agent,
        to_team=to_team,
        sender=deps,
        data={"question_id": question_id},
    )
    await session.log.append(asked, message)
    session.questions.asked(asked)
    return f"Asked {args.to} (question id {question_id}); the answer will arrive as a message."


class AnswerQuestionArgs(ToolArgs):
    """Arguments of ``answer_question``."""

    question_id: str
    answer: str


@tool(name="answer_question", category="coordination", args=AnswerQuestionArgs)
async def answer_question(args: AnswerQuestionArgs, ctx: ToolContext, deps: Agent) -> str:
    """Answer a question you were asked; the answer goes back to whoever asked."""
    session = deps.session
    asked = session.questions.open_question(args.question_id)
    answered = QuestionAnswered(
        session_id=ctx.session_id,
        question_id=asked.question_id,
        answerer=ctx.agent_id,
        answer=args.answer,
    )
    reply = session.message_event(
        msg_type="answer",
        content=f"Answer to your question {asked.question!r}:\n{args.answer}",
        to_agent=asked.asker,
        sender=deps,
        data={"question_id": asked.question_id},
    )
    await session.log.append(answered, reply)
    return "Answer sent."


COMMS_TOOLS: tuple[Tool[Agent], ...] = (peer_message, ask_question, answer_question)
