"""Readiness and rendezvous tools: signal, subscribe, create, join, arrive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.errors import ToolError
from loomkin.ids import TaskId
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.coordination import Member

__all__ = ["RENDEZVOUS_TOOLS"]


def _members(deps: AgentContext, ctx: ToolContext, names: list[str]) -> list[Member]:
    return [deps.directory.resolve(n, None if "/" in n else ctx.team_id) for n in names]


class SignalReadyArgs(ToolArgs):
    """Arguments of ``signal_ready``."""

    name: str = Field(min_length=1, description='What you are ready for, e.g. "schema_ready".')
    detail: str = Field(default="", description="What the others need to know.")


@tool(name="signal_ready", category="coordination", args=SignalReadyArgs)
async def signal_ready(args: SignalReadyArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Announce that you are ready for something named; its subscribers are told."""
    told = await deps.readiness.signal(deps.caller(ctx), args.name, args.detail)
    return f"Signalled ready for {args.name!r}; {told} subscriber(s) told."


class SubscribeReadyArgs(ToolArgs):
    """Arguments of ``subscribe_ready``."""

    agent: str | None = Field(default=None, description='An agent ("name" or "team/name").')
    team: str | None = Field(default=None, description="A team (any of its agents).")
    name: str | None = Field(default=None, description="A readiness name, e.g. briefed.")


@tool(name="subscribe_ready", category="coordination", args=SubscribeReadyArgs)
async def subscribe_ready(args: SubscribeReadyArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Be told (once) when an agent, a team or a named readiness signal is ready."""
    given = [x for x in (args.agent, args.team, args.name) if x]
    if len(given) != 1:
        raise ToolError("Give exactly one of agent, team or name.")
    me = deps.caller(ctx)
    if args.agent:
        target = _members(deps, ctx, [args.agent])[0]
        await deps.readiness.subscribe(me, "agent", target.agent_id, target.name)
        return f"You will be told when {target.name} is ready."
    if args.team:
        team_id = deps.resolve_team(args.team)
        await deps.readiness.subscribe(me, "team", team_id, args.team)
        return f"You will be told when an agent of team {args.team} is ready."
    assert args.name is not None
    await deps.readiness.subscribe(me, "name", args.name.strip(), args.name.strip())
    return f"You will be told when someone signals ready for {args.name!r}."


class RendezvousCreateArgs(ToolArgs):
    """Arguments of ``rendezvous_create``."""

    name: str = Field(min_length=1, description="The rendezvous' name (unique among open ones).")
    participants: list[str] = Field(min_length=1, description='"name" or "team/name" each.')
    timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    on_complete: Literal["message", "create_task", "unblock_task"] = "message"
    message: str = Field(default="", description="The message (or the new task's description).")
    notify: list[str] = Field(default_factory=list, description="Who gets the message.")
    task_title: str = Field(default="", description="For create_task: its title.")
    task_team: str | None = Field(default=None, description="For create_task: its team.")
    task_id: str | None = Field(default=None, description="For unblock_task: the blocked task.")


@tool(name="rendezvous_create", category="coordination", args=RendezvousCreateArgs)
async def rendezvous_create(
    args: RendezvousCreateArgs, ctx: ToolContext, deps: AgentContext
) -> str:
    """Open a named barrier; when all participants arrive, its action runs once."""
    created = await deps.rendezvous.create(
        deps.caller(ctx),
        args.name,
        _members(deps, ctx, args.participants),
        team_id=ctx.team_id,
        timeout_s=args.timeout_s,
        action=args.on_complete,
        message=args.message,
        notify=_members(deps, ctx, args.notify),
        task_title=args.task_title,
        task_team=deps.resolve_team(args.task_team) if args.task_team else None,
        task_id=TaskId(args.task_id) if args.task_id else None,
    )
    return (
        f"Rendezvous {created.name!r} is open for {', '.join(args.participants)} "
        f"({created.timeout_s:.0f} s). Each calls rendezvous_arrive(name={created.name!r})."
    )


class RendezvousJoinArgs(ToolArgs):
    """Arguments of ``rendezvous_join``."""

    name: str = Field(min_length=1)
    agents: list[str] = Field(default_factory=list, description="Who to add (default: you).")


@tool(name="rendezvous_join", category="coordination", args=RendezvousJoinArgs)
async def rendezvous_join(args: RendezvousJoinArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Add participants (from any team; default: yourself) to an open rendezvous."""
    members = _members(deps, ctx, args.agents) if args.agents else [deps.caller(ctx)]
    added = await deps.rendezvous.join(ctx.agent_name, args.name, members)
    return f"Added to {args.name!r}: {', '.join(added) or 'nobody new'}."


class RendezvousArriveArgs(ToolArgs):
    """Arguments of ``rendezvous_arrive``."""

    name: str = Field(min_length=1)


@tool(name="rendezvous_arrive", category="coordination", args=RendezvousArriveArgs)
async def rendezvous_arrive(
    args: RendezvousArriveArgs, ctx: ToolContext, deps: AgentContext
) -> str:
    """Arrive at a rendezvous you take part in."""
    return await deps.rendezvous.arrive(deps.caller(ctx), args.name)


RENDEZVOUS_TOOLS: tuple[Tool[AgentContext], ...] = (
    signal_ready,
    subscribe_ready,
    rendezvous_create,
    rendezvous_join,
    rendezvous_arrive,
)
