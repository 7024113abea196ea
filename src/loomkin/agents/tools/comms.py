"""Messaging tools: peer messages, broadcasts, and questions (asked, forwarded, answered).

How this works and why:

* Every send appends ``MessageSent`` events and returns at once; the session delivers them to
  the recipients' mailboxes when they are committed. No tool waits for a recipient, so two
  agents messaging each other in the same step cannot deadlock.
* Who may talk to whom is checked here, at send time (:meth:`AgentContext.check_comms`),
  so a refusal is a tool error the model can read and act on.
* Answers and expiries are replies, not new conversations: an answer always goes back to
  the asker, so it is not subject to the policy.
* A question names its addressee, or leaves it to Loomkin: ``ask_question`` without ``to``
  (and ``forward_question`` without ``to``) routes it to the agent most likely to know, by
  relevance to their current task, files and findings (:mod:`loomkin.coordination.knowledge`),
  among the agents the policy allows and not yet asked. One hop limit
  (``max_question_hops``) and one deadline (``question_timeout_s``) hold for both ways.
* ``ask_question(to="user")`` asks the person running the session. No agent receives it: the
  user answers it through the facade (a terminal prompt, the web page, the HTTP API, or the
  client of a session hosted on another worker, over NATS), with the same deadline, and the
  answer (or the expiry notice) arrives as a message like any other.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.core.events import (
    Event,
    QuestionAnswered,
    QuestionAsked,
    QuestionForwarded,
    TopicSubscribed,
    TopicUnsubscribed,
)
from loomkin.errors import PolicyRefused, ToolError
from loomkin.ids import AgentId, QuestionId, TeamId, new_id
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.agents.context import AgentContext
    from loomkin.coordination import Member, Route

__all__ = ["COMMS_TOOLS"]

_ADDRESS = (
    'Who: "name" (your team), "team/name" (another team\'s agent), "team:<team name>" (every '
    'agent of a team), or "topic:<topic>" (every agent following that topic).'
)


def _address(deps: AgentContext, ctx: ToolContext, to: str) -> tuple[AgentId | None, TeamId | None]:
    """Resolve ``to`` to one agent or one team and check the communication policy."""
    if to.startswith("team:"):
        team_id = deps.resolve_team(to.removeprefix("team:"))
        deps.check_comms(ctx.team_id, team_id)
        return None, team_id
    target = deps.directory.resolve(to, None if "/" in to else ctx.team_id)
    if target.agent_id == ctx.agent_id:
        raise ToolError("You cannot message yourself.")
    deps.check_comms(ctx.team_id, target.team_id)
    return target.agent_id, None


def _who(deps: AgentContext, agent_id: str) -> str:
    """``team/name`` of an agent, as other agents address it."""
    member = deps.directory.member(agent_id)
    return str(agent_id) if member is None else deps.qualified_name(member)


class PeerMessageArgs(ToolArgs):
    """Arguments of ``peer_message``."""

    to: str = Field(description=_ADDRESS)
    content: str = Field(description="The message.")


@tool(name="peer_message", category="coordination", args=PeerMessageArgs)
async def peer_message(args: PeerMessageArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Send a message to another agent, a whole team or a topic (it does not wait for a reply)."""
    if args.to.startswith("topic:"):
        name = _topic_name(args.to.removeprefix("topic:"))
        await deps.log.append(
            deps.messages.message(
                "peer_message",
                args.content,
                topic=deps.topics.topic_key(name),
                sender=deps.caller(ctx),
                data={"topic": name},
            )
        )
        return f"Sent to every agent following topic {name!r}."
    to_agent, to_team = _address(deps, ctx, args.to)
    await deps.log.append(
        deps.messages.message(
            "peer_message",
            args.content,
            to_agent=to_agent,
            to_team=to_team,
            sender=deps.caller(ctx),
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
async def broadcast(args: BroadcastArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Send one message to every agent of your child teams or of your sibling teams."""
    state = deps.state
    teams = state.children(ctx.team_id) if args.to == "children" else state.siblings(ctx.team_id)
    which = "child" if args.to == "children" else "sibling"
    if not teams:
        raise ToolError(f"Your team has no {which} teams; list_teams shows the teams around yours.")
    for team in teams:
        deps.check_comms(ctx.team_id, team.team_id)
    sender = deps.caller(ctx)
    await deps.log.append(
        *(
            deps.messages.message(
                "peer_message",
                args.content,
                to_team=team.team_id,
                sender=sender,
                data={"broadcast": args.to},
            )
            for team in teams
        )
    )
    names = ", ".join(t.name for t in teams)
    return f"Sent to every agent of {len(teams)} {which} team(s): {names}."


_ROUTED = (
    "Leave it empty to let Loomkin pick the agent most likely to know (by their current task, "
    "files and findings). "
)


def _allowed(deps: AgentContext, from_team: TeamId) -> Callable[[Member], bool]:
    """Whether the communication policy lets ``from_team`` talk to a member's team."""

    def allowed(member: Member) -> bool:
        try:
            deps.check_comms(from_team, member.team_id)
        except PolicyRefused:
            return False
        return True

    return allowed


def _target(
    deps: AgentContext,
    ctx: ToolContext,
    to: str | None,
    question: str,
    exclude: set[str],
    nobody: str,
) -> tuple[AgentId | None, TeamId | None, Route | None]:
    """Who gets the question: ``to`` (checked), or the most likely expert the caller may ask.

    Raises:
        ToolError: ``to`` is None and nobody is left to ask (the message is ``nobody``).
    """
    if to is not None:
        return (*_address(deps, ctx, to), None)
    route = deps.knowledge.best_expert(question, exclude, _allowed(deps, ctx.team_id))
    if route is None:
        raise ToolError(nobody)
    return route.member.agent_id, None, route


USER = "user"
"""The addressee ``to`` that means the person running the session, not an agent."""


class AskQuestionArgs(ToolArgs):
    """Arguments of ``ask_question``."""

    question: str
    to: str | None = Field(
        default=None,
        description=_ROUTED
        + _ADDRESS
        + ' Or "user": the person running the session (only for what no agent can know: '
        "a preference, a decision, a secret you must not guess).",
    )


@tool(name="ask_question", category="coordination", args=AskQuestionArgs)
async def ask_question(args: AskQuestionArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Ask an agent, a team or the user a question, or (without `to`) whoever most likely knows.

    It does not wait: the answer arrives as a message, or a notice when the question expires.
    """
    question_id = QuestionId(new_id("q_"))
    if args.to is not None and args.to.strip().lower() == USER:
        return await _ask_user(args.question, question_id, ctx, deps)
    timeout_s = deps.settings.question_timeout_s
    nobody = "There is nobody you may ask; name an agent or team with `to`."
    to_agent, to_team, route = _target(deps, ctx, args.to, args.question, {ctx.agent_id}, nobody)
    routed: list[Event] = []
    who, why = args.to or "", ""
    if route is not None:
        who, why = _who(deps, route.member.agent_id), f", picked for {route.reason}"
        routed.append(deps.knowledge.routed(question_id, route, 1))
    asked = QuestionAsked(
        session_id=ctx.session_id,
        question_id=question_id,
        asker=ctx.agent_id,
        asker_team=ctx.team_id,
        question=args.question,
        to_agent=to_agent,
        to_team=to_team,
        deadline=deps.clock.now() + timeout_s,
    )
    picked = "; you were picked as the agent most likely to know" if routed else ""
    text = (
        f"{args.question}\n(question id {question_id}{picked}; reply with answer_question, or "
        "pass it on with forward_question if someone else knows better)"
    )
    message = deps.messages.message(
        "question",
        text,
        to_agent=to_agent,
        to_team=to_team,
        sender=deps.caller(ctx),
        data={"question_id": question_id},
    )
    await deps.log.append(asked, *routed, message)  # the question book arms its deadline
    return (
        f"Asked {who}{why} (question id {question_id}); the answer will arrive as a message, "
        f"or a notice if nobody answers within {timeout_s:.0f} s. Carry on meanwhile."
    )


async def _ask_user(
    question: str, question_id: QuestionId, ctx: ToolContext, deps: AgentContext
) -> str:
    """Journal a question to the user; the facade shows it, the deadline ends it."""
    if not question.strip():
        raise ToolError("The question is empty; write what you need the user to tell you.")
    timeout_s = deps.settings.question_timeout_s
    await deps.log.append(  # the question book arms its deadline
        QuestionAsked(
            session_id=ctx.session_id,
            question_id=question_id,
            asker=ctx.agent_id,
            asker_team=ctx.team_id,
            question=question,
            deadline=deps.clock.now() + timeout_s,
            to_user=True,
        )
    )
    return (
        f"Asked the user (question id {question_id}); the answer will arrive as a message, or "
        f"a notice if the user does not answer within {timeout_s:.0f} s. Carry on meanwhile "
        "with what does not depend on it."
    )


def _forwardable(deps: AgentContext, ctx: ToolContext, question_id: str) -> QuestionAsked:
    """The open question ``question_id``, if the caller may forward it (addressee, hop limit)."""
    asked = deps.questions.open_question(question_id)
    if asked.to_agent != ctx.agent_id and asked.to_team != ctx.team_id:
        raise ToolError(f"Question {asked.question_id} was not addressed to you or your team.")
    limit = deps.settings.max_question_hops
    if len(asked.hops) >= limit:
        raise ToolError(
            f"Question {asked.question_id} has already been forwarded {len(asked.hops)} times "
            f"(the limit is {limit}). Answer it with answer_question, even if only to say who "
            "might know."
        )
    return asked


class ForwardQuestionArgs(ToolArgs):
    """Arguments of ``forward_question``."""

    question_id: str
    to: str | None = Field(
        default=None,
        description="Leave it empty to pass it to the next agent most likely to know (not "
        "asked yet). " + _ADDRESS,
    )
    note: str = Field(default="", description="What you add for the new addressee.")


@tool(name="forward_question", category="coordination", args=ForwardQuestionArgs)
async def forward_question(args: ForwardQuestionArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Pass a question you were asked and cannot answer; the answer still goes to the asker.

    Name who knows better with `to`, or leave it out to pass it to the next most likely expert.
    """
    asked = _forwardable(deps, ctx, args.question_id)
    limit = deps.settings.max_question_hops
    hops = (*asked.hops, _who(deps, ctx.agent_id))
    knowledge = deps.knowledge
    nobody = (
        f"Nobody else is left to ask about question {asked.question_id}. Answer it with "
        "answer_question, even if only to say you do not know."
    )
    exclude = knowledge.tried(asked.question_id) | {ctx.agent_id, asked.asker}
    to_agent, to_team, route = _target(deps, ctx, args.to, asked.question, exclude, nobody)
    routed: list[Event] = []
    who = args.to or ""
    if route is not None:
        who = f"{_who(deps, route.member.agent_id)} ({route.reason})"
        routed.append(knowledge.routed(asked.question_id, route, len(hops) + 1))
    forwarded = QuestionForwarded(
        session_id=ctx.session_id,
        question_id=asked.question_id,
        forwarded_by=ctx.agent_id,
        to_agent=to_agent,
        to_team=to_team,
        note=args.note,
        hops=hops,
    )
    note = f"\nNote from {ctx.agent_name}: {args.note}" if args.note else ""
    picked = "; you were picked as the agent most likely to know" if routed else ""
    text = (
        f"{asked.question}\n(question id {asked.question_id} from {_who(deps, asked.asker)}, "
        f"forwarded by {' → '.join(hops)}{picked}; reply with answer_question and the answer "
        f"goes to the asker){note}"
    )
    message = deps.messages.message(
        "question",
        text,
        to_agent=to_agent,
        to_team=to_team,
        sender=deps.caller(ctx),
        data={"question_id": asked.question_id, "forwarded": True},
    )
    await deps.log.append(forwarded, *routed, message)
    return f"Forwarded question {asked.question_id} to {who} (hop {len(hops)} of {limit})."


class AnswerQuestionArgs(ToolArgs):
    """Arguments of ``answer_question``."""

    question_id: str
    answer: str


@tool(name="answer_question", category="coordination", args=AnswerQuestionArgs)
async def answer_question(args: AnswerQuestionArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Answer a question you were asked; the answer goes back to whoever asked."""
    asked = deps.questions.open_question(args.question_id)
    if asked.to_user:
        raise ToolError(
            f"Question {asked.question_id} was asked of the user; only the user answers it."
        )
    answered = QuestionAnswered(
        session_id=ctx.session_id,
        question_id=asked.question_id,
        answerer=ctx.agent_id,
        answer=args.answer,
    )
    reply = deps.messages.message(
        "answer",
        f"Answer to your question {asked.question!r}:\n{args.answer}",
        to_agent=asked.asker,
        sender=deps.caller(ctx),
        data={"question_id": asked.question_id},
    )
    await deps.log.append(answered, reply)
    return "Answer sent."


_TOPIC = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def _topic_name(raw: str) -> str:
    name = raw.strip().lower()
    if not _TOPIC.fullmatch(name):
        raise ToolError(
            f"{raw!r} is not a topic name: use 1 to 63 lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (for example 'schema' or 'api-changes')."
        )
    return name


class FollowTopicArgs(ToolArgs):
    """Arguments of ``follow_topic``."""

    topic: str = Field(description='The topic, e.g. "schema" or "api-changes".')
    leave: bool = Field(default=False, description="True to stop following it.")


@tool(name="follow_topic", category="coordination", args=FollowTopicArgs)
async def follow_topic(args: FollowTopicArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Follow (or leave) a topic: messages sent to "topic:<name>" reach its followers only."""
    name = _topic_name(args.topic)
    following = name in deps.topics.topics_of(ctx.agent_id)
    if following != args.leave:
        return f"You {'do not follow' if args.leave else 'already follow'} topic {name!r}."
    event = (
        TopicUnsubscribed(session_id=ctx.session_id, agent_id=ctx.agent_id, topic=name)
        if args.leave
        else TopicSubscribed(session_id=ctx.session_id, agent_id=ctx.agent_id, topic=name)
    )
    await deps.log.append(event)
    if args.leave:
        return f"You left topic {name!r}."
    return f'You follow topic {name!r}; messages sent to "topic:{name}" now reach you.'


COMMS_TOOLS: tuple[Tool[AgentContext], ...] = (
    peer_message,
    broadcast,
    follow_topic,
    ask_question,
    forward_question,
    answer_question,
)
