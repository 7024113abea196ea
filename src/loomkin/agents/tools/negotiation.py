"""Negotiation tools: an assignee accepts, declines or counter-proposes; an assigner resolves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.coordination.negotiation import Objection
from loomkin.errors import ToolError
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.coordination import Member

__all__ = ["NEGOTIATION_TOOLS"]


def _task(ctx: ToolContext, task_id: str | None) -> str:
    if task_id:
        return task_id
    if ctx.task_id is None:
        raise ToolError("You have no task in progress; pass task_id.")
    return ctx.task_id


def _agent(deps: AgentContext, ctx: ToolContext, name: str) -> Member:
    return deps.directory.resolve(name, None if "/" in name else ctx.team_id)


class TaskAcceptArgs(ToolArgs):
    """Arguments of ``task_accept``."""

    task_id: str | None = Field(default=None, description="Default: your current task.")


@tool(name="task_accept", category="coordination", args=TaskAcceptArgs)
async def task_accept(args: TaskAcceptArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Accept the task just assigned to you (or withdraw an objection you made)."""
    return await deps.negotiations.accept(deps.caller(ctx), _task(ctx, args.task_id))


class TaskDeclineArgs(ToolArgs):
    """Arguments of ``task_decline``."""

    reason: str = Field(min_length=1, description="Why you are not the right agent for it.")
    task_id: str | None = Field(default=None, description="Default: your current task.")


@tool(name="task_decline", category="coordination", args=TaskDeclineArgs)
async def task_decline(args: TaskDeclineArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Decline the task just assigned to you; whoever assigned it decides where it goes."""
    objection = Objection(response="decline", reason=args.reason.strip())
    return await deps.negotiations.object(deps.caller(ctx), _task(ctx, args.task_id), objection)


class TaskCounterArgs(ToolArgs):
    """Arguments of ``task_counter``."""

    kind: Literal["suggest_agent", "clarify", "conflict"] = Field(
        description="suggest_agent: another agent is better placed (name it in `agent`); "
        "clarify: you need an answer first; conflict: it clashes with other work."
    )
    reason: str = Field(min_length=1, description="Why (or your question, for clarify).")
    agent: str | None = Field(
        default=None, description='For suggest_agent: who, as "name" or "team/name".'
    )
    task_id: str | None = Field(default=None, description="Default: your current task.")


@tool(name="task_counter", category="coordination", args=TaskCounterArgs)
async def task_counter(args: TaskCounterArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Counter-propose on the task just assigned to you: a better agent, a question, a clash."""
    if args.kind == "suggest_agent" and not args.agent:
        raise ToolError('kind "suggest_agent" needs `agent`: the agent you suggest.')
    wants_agent = args.kind == "suggest_agent" and args.agent
    suggested = _agent(deps, ctx, args.agent) if wants_agent and args.agent else None
    if suggested is not None and suggested.agent_id == ctx.agent_id:
        raise ToolError("You cannot suggest yourself; use task_accept to take the task.")
    objection = Objection(
        response="counter",
        counter_kind=args.kind,
        suggested=None if suggested is None else suggested.agent_id,
        suggested_name="" if suggested is None else suggested.name,
        reason=args.reason.strip(),
    )
    return await deps.negotiations.object(deps.caller(ctx), _task(ctx, args.task_id), objection)


class NegotiationResolveArgs(ToolArgs):
    """Arguments of ``negotiation_resolve``."""

    task_id: str = Field(description="The task whose assignee objected.")
    resolution: Literal["accept", "override", "reassign"] = Field(
        description="accept: move the task as the assignee asked (after a decline: to the "
        "best other agent); override: keep the assignment; reassign: give it to `agent`."
    )
    agent: str | None = Field(default=None, description="For reassign: who gets the task.")
    reason: str = Field(default="", description="Why (the assignee reads it).")


@tool(name="negotiation_resolve", category="coordination", args=NegotiationResolveArgs)
async def negotiation_resolve(
    args: NegotiationResolveArgs, ctx: ToolContext, deps: AgentContext
) -> str:
    """Answer an objection to an assignment you made: accept it, override it, or reassign."""
    target = _agent(deps, ctx, args.agent) if args.agent else None
    return await deps.negotiations.resolve(
        deps.caller(ctx), args.task_id, args.resolution, target=target, reason=args.reason.strip()
    )


NEGOTIATION_TOOLS: tuple[Tool[AgentContext], ...] = (
    task_accept,
    task_decline,
    task_counter,
    negotiation_resolve,
)
