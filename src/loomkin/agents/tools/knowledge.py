"""Knowledge tools: targeted insights, the team's findings, and questions routed to experts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from loomkin.core.events import QuestionAsked
from loomkin.errors import ToolError
from loomkin.ids import QuestionId, new_id
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.coordination import Route

__all__ = ["KNOWLEDGE_TOOLS"]


class ShareInsightArgs(ToolArgs):
    """Arguments of ``share_insight``."""

    text: str = Field(description="The finding, self-contained.")
    files: list[str] = Field(default_factory=list, description="Files it concerns.")
    kind: str = Field(
        default="insight", description="insight, bug, fix, blocker, finding, refactor, ..."
    )


@tool(name="share_insight", category="coordination", args=ShareInsightArgs)
async def share_insight(args: ShareInsightArgs, ctx: ToolContext, deps: Agent) -> str:
    """Record a finding in the team's knowledge and send it only to the agents it concerns.

    Recipients are chosen by relevance to their current task and files (not broadcast).
    """
    coordination = deps.session.coordination
    shared = await coordination.knowledge.share(
        coordination.member(deps), args.text, kind=args.kind, files=args.files
    )
    names = [m.name for m in coordination.members() if m.agent_id in shared.recipients]
    sent = f"sent to {', '.join(names)}" if names else "relevant to nobody's current work"
    return f"Recorded {shared.insight_id}; {sent}."


class KnowledgeQueryArgs(ToolArgs):
    """Arguments of ``knowledge_query``."""

    search: str = Field(default="", description="Words every finding must contain.")
    limit: int = Field(default=10, ge=1, le=50)


@tool(name="knowledge_query", category="coordination", args=KnowledgeQueryArgs)
async def knowledge_query(args: KnowledgeQueryArgs, ctx: ToolContext, deps: Agent) -> str:
    """Search the findings your team (and its sub-teams) recorded, newest first."""
    hits = deps.session.coordination.knowledge.search(deps.team_id, args.search, args.limit)
    if not hits:
        return "No matching findings."
    return "\n".join(
        f"- [{f.insight_type}] {f.author_name}: {f.text}"
        + (f" (files: {', '.join(f.files)})" if f.files else "")
        for f in hits
    )


class AskExpertArgs(ToolArgs):
    """Arguments of ``ask_expert``."""

    question: str


async def _send(deps: Agent, question_id: str, question: str, route: Route, hop: int) -> None:
    session = deps.session
    knowledge = session.coordination.knowledge
    text = (
        f"{question}\n(question id {question_id}; you were picked as the agent most likely to "
        "know. Reply with answer_question; if you cannot answer, call pass_question.)"
    )
    message = session.message_event(
        msg_type="question",
        content=text,
        to_agent=route.member.agent_id,
        sender=deps,
        data={"question_id": question_id},
    )
    await session.log.append(knowledge.routed(question_id, route, hop), message)


@tool(name="ask_expert", category="coordination", args=AskExpertArgs)
async def ask_expert(args: AskExpertArgs, ctx: ToolContext, deps: Agent) -> str:
    """Ask whoever is most likely to know (picked by relevance); the answer comes back to you."""
    session = deps.session
    coordination = session.coordination
    route = coordination.knowledge.best_expert(coordination.member(deps), args.question, set())
    if route is None:
        raise ToolError("Nobody else in the session can be asked.")
    question_id = QuestionId(new_id("q_"))
    asked = QuestionAsked(
        session_id=ctx.session_id,
        question_id=question_id,
        asker=ctx.agent_id,
        asker_team=ctx.team_id,
        question=args.question,
        to_agent=route.member.agent_id,
        deadline=session.clock.now() + session.settings.question_timeout_s,
        hops=(route.member.agent_id,),
    )
    await session.log.append(asked)
    session.questions.asked(asked)
    await _send(deps, question_id, args.question, route, 1)
    return (
        f"Asked {route.member.name} ({route.reason}); question id {question_id}. The answer "
        "will arrive as a message."
    )


class PassQuestionArgs(ToolArgs):
    """Arguments of ``pass_question``."""

    question_id: str


@tool(name="pass_question", category="coordination", args=PassQuestionArgs)
async def pass_question(args: PassQuestionArgs, ctx: ToolContext, deps: Agent) -> str:
    """Pass a question you cannot answer to the next most likely expert (limited hops)."""
    session = deps.session
    coordination = session.coordination
    knowledge = coordination.knowledge
    asked = session.questions.open_question(args.question_id)
    tried = set(knowledge.hops_of(args.question_id)) | {ctx.agent_id}
    asker = coordination.ctx.member(asked.asker)
    route = None
    if asker is not None and len(tried) <= knowledge.max_hops:
        route = knowledge.best_expert(asker, asked.question, tried)
    if route is None:
        await session.log.append(
            session.message_event(
                msg_type="answer",
                content=(
                    f"Nobody could answer your question {asked.question!r} after "
                    f"{len(tried)} hops. Proceed without it or ask the lead."
                ),
                to_agent=asked.asker,
                sender=deps,
                data={"question_id": asked.question_id},
            )
        )
        return "No one else to ask; the asker was told."
    await _send(deps, asked.question_id, asked.question, route, len(tried) + 1)
    return f"Passed to {route.member.name}."


KNOWLEDGE_TOOLS: tuple[Tool[Agent], ...] = (
    share_insight,
    knowledge_query,
    ask_expert,
    pass_question,
)
