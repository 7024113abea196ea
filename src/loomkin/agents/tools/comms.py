"""Messaging tools: peer messages, broadcasts, questions (asked, forwarded, answered), findings.

How this works and why:

* Every send appends ``MessageSent`` events and returns at once; the session delivers them to
  the recipients' mailboxes when they are committed. No tool waits for a recipient, so two
  agents messaging each other in the same step cannot deadlock.
* Who may talk to whom is checked here, at send time (:meth:`SessionRuntime.check_comms`),
  so a refusal is a tool error the model can read and act on.
* Answers, expiries and propagated findings are replies or relays, not new conversations:
  an answer always goes back to the asker, and a finding climbs the tree one parent at a
  time, so neither is subject to the policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.core.events import MessageSent, QuestionAnswered, QuestionAsked, QuestionForwarded
from loomkin.errors import ToolError
from loomkin.ids import AgentId, QuestionId, TeamId, new_id
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.agents.session import SessionRuntime
    from loomkin.core.state import TeamView

__all__ = ["COMMS_TOOLS"]

_ADDRESS = 'Who: "name" (your team), "team/name" (another team\'s agent), or "team:<team name>".'


def _address(deps: Agent, to: str) -> tuple[AgentId | None, TeamId | None]:
    """Resolve ``to`` to one agent or one team and check the communication policy."""
    session = deps.session
    if to.startswith("team:"):
        team_id = session.resolve_team(to.removeprefix("team:"))
        session.check_comms(deps.team_id, team_id)
        return None, team_id
    target = session.agent(to, None if "/" in to else deps.team_id)
    if target is deps:
        raise ToolError("You cannot message yourself.")
    session.check_comms(deps.team_id, target.team_id)
    return target.agent_id, None


def _who(session: SessionRuntime, agent_id: AgentId) -> str:
    """``team/name`` of an agent, as other agents address it."""
    agent = session.agents.get(agent_id)
    if agent is None:
        return str(agent_id)
    return f"{session.state.team(agent.team_id).name}/{agent.name}"


class PeerMessageArgs(ToolArgs):
    """Arguments of ``peer_message``."""

    to: str = Field(description=_ADDRESS)
    content: str = Field(description="The message.")


@tool(name="peer_message", category="coordination", args=PeerMessageArgs)
async def peer_message(args: PeerMessageArgs, ctx: ToolContext, deps: Agent) -> str:
    """Send a message to another agent or a whole team (it does not wait for a reply)."""
    session = deps.session
    to_agent, to_team = _address(deps, args.to)
    await session.log.append(
        session.message_event(
            msg_type="peer_message",
            content=args.content,
            to_agent=to_agent,
            to_team=to_team,
            sender=deps,
        )
    )
    if to_team is not None:
        return f"Sent to every agent of team {args.to.removeprefix('team:')}."
    return f"Sent to {args.to}."


class BroadcastArgs(ToolArgs):
    """Arguments of ``broadcast``."""

    to: Literal["children", "siblings"] = Field(
        description="children: every agent of your child teams; siblings: every agent of the "
        "other teams under your parent team."
    )
    content: str = Field(description="The message.")


@tool(name="broadcast", category="coordination", args=BroadcastArgs)
async def broadcast(args: BroadcastArgs, ctx: ToolContext, deps: Agent) -> str:
    """Send one message to every agent of your child teams or of your sibling teams."""
    session = deps.session
    state = session.state
    teams = state.children(deps.team_id) if args.to == "children" else state.siblings(deps.team_id)
    which = "child" if args.to == "children" else "sibling"
    if not teams:
        raise ToolError(f"Your team has no {which} teams; list_teams shows the teams around yours.")
    for team in teams:
        session.check_comms(deps.team_id, team.team_id)
    await session.log.append(
        *(
            session.message_event(
                msg_type="peer_message",
                content=args.content,
                to_team=team.team_id,
                sender=deps,
                data={"broadcast": args.to},
            )
            for team in teams
        )
    )
    names = ", ".join(t.name for t in teams)
    return f"Sent to every agent of {len(teams)} {which} team(s): {names}."


class AskQuestionArgs(ToolArgs):
    """Arguments of ``ask_question``."""

    question: str
    to: str = Field(description=_ADDRESS)


@tool(name="ask_question", category="coordination", args=AskQuestionArgs)
async def ask_question(args: AskQuestionArgs, ctx: ToolContext, deps: Agent) -> str:
    """Ask another agent (or team) a question; the answer arrives as a message later."""
    session = deps.session
    question_id = QuestionId(new_id("q_"))
    to_agent, to_team = _address(deps, args.to)
    timeout_s = session.settings.question_timeout_s
    asked = QuestionAsked(
        session_id=ctx.session_id,
        question_id=question_id,
        asker=ctx.agent_id,
        asker_team=ctx.team_id,
        question=args.question,
        to_agent=to_agent,
        to_team=to_team,
        deadline=session.clock.now() + timeout_s,
    )
    text = (
        f"{args.question}\n(question id {question_id}; reply with answer_question, or pass it "
        "on with forward_question if someone else knows better)"
    )
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
    return (
        f"Asked {args.to} (question id {question_id}); the answer will arrive as a message, "
        f"or a notice if nobody answers within {timeout_s:.0f} s. Carry on meanwhile."
    )


class ForwardQuestionArgs(ToolArgs):
    """Arguments of ``forward_question``."""

    question_id: str
    to: str = Field(description=_ADDRESS)
    note: str = Field(default="", description="What you add for the new addressee.")


@tool(name="forward_question", category="coordination", args=ForwardQuestionArgs)
async def forward_question(args: ForwardQuestionArgs, ctx: ToolContext, deps: Agent) -> str:
    """Pass a question you were asked to someone who knows better; they answer the asker."""
    session = deps.session
    asked = session.questions.open_question(args.question_id)
    if asked.to_agent != deps.agent_id and asked.to_team != deps.team_id:
        raise ToolError(f"Question {asked.question_id} was not addressed to you or your team.")
    limit = session.settings.max_question_hops
    if len(asked.hops) >= limit:
        raise ToolError(
            f"Question {asked.question_id} has already been forwarded {len(asked.hops)} times "
            f"(the limit is {limit}). Answer it with answer_question, even if only to say who "
            "might know."
        )
    to_agent, to_team = _address(deps, args.to)
    hops = (*asked.hops, _who(session, deps.agent_id))
    forwarded = QuestionForwarded(
        session_id=ctx.session_id,
        question_id=asked.question_id,
        forwarded_by=ctx.agent_id,
        to_agent=to_agent,
        to_team=to_team,
        note=args.note,
        hops=hops,
    )
    note = f"\nNote from {deps.name}: {args.note}" if args.note else ""
    text = (
        f"{asked.question}\n(question id {asked.question_id} from {_who(session, asked.asker)}, "
        f"forwarded by {' → '.join(hops)}; reply with answer_question and the answer goes to "
        f"the asker){note}"
    )
    message = session.message_event(
        msg_type="question",
        content=text,
        to_agent=to_agent,
        to_team=to_team,
        sender=deps,
        data={"question_id": asked.question_id, "forwarded": True},
    )
    await session.log.append(forwarded, message)
    return f"Forwarded question {asked.question_id} to {args.to} (hop {len(hops)} of {limit})."


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


FindingKind = Literal["insight", "blocker", "discovery", "warning"]


class ShareFindingArgs(ToolArgs):
    """Arguments of ``share_finding``."""

    kind: FindingKind = Field(description="insight, blocker, discovery or warning.")
    content: str = Field(description="The finding, self-contained.")
    depth: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Levels it climbs above your team (1: your parent team; 0: your team only). "
        "Default: the session's setting.",
    )


@tool(name="share_finding", category="coordination", args=ShareFindingArgs)
async def share_finding(args: ShareFindingArgs, ctx: ToolContext, deps: Agent) -> str:
    """Tell your team an insight, blocker, discovery or warning; it also climbs to parent teams."""
    session = deps.session
    depth = session.settings.propagation_depth if args.depth is None else args.depth
    ancestors = _ancestors(session, deps.team_id, depth)
    source = session.state.team(deps.team_id)
    events = [
        session.message_event(
            msg_type=args.kind,
            content=args.content,
            to_team=deps.team_id,
            sender=deps,
            data={"source_team": source.team_id, "levels": 0},
        ),
        *(
            _relay(session, deps, args.kind, args.content, source, team, levels)
            for levels, team in enumerate(ancestors, start=1)
        ),
    ]
    await session.log.append(*events)
    reached = [f"your team {source.name!r}"] + [repr(t.name) for t in ancestors]
    return f"Shared the {args.kind} with {', '.join(reached)}."


def _ancestors(session: SessionRuntime, team_id: TeamId, depth: int) -> list[TeamView]:
    """The team's parent, grandparent, ... at most ``depth`` of them."""
    out: list[TeamView] = []
    parent = session.state.parent(team_id)
    while parent is not None and len(out) < depth:
        out.append(parent)
        parent = session.state.parent(parent.team_id)
    return out


def _relay(
    session: SessionRuntime,
    deps: Agent,
    kind: FindingKind,
    content: str,
    source: TeamView,
    team: TeamView,
    levels: int,
) -> MessageSent:
    below = "one level" if levels == 1 else f"{levels} levels"
    text = (
        f"{kind.capitalize()} from team {source.name!r} ({below} below yours), shared by "
        f"{deps.name}:\n{content}"
    )
    return session.message_event(
        msg_type=kind,
        content=text,
        to_team=team.team_id,
        sender=deps,
        data={"source_team": source.team_id, "levels": levels},
    )


COMMS_TOOLS: tuple[Tool[Agent], ...] = (
    peer_message,
    broadcast,
    ask_question,
    forward_question,
    answer_question,
    share_finding,
)
