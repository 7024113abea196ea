"""Adaptive-team tools: ``task_claim`` (work stealing) and ``team_scale`` (a lead's bounds)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from loomkin.coordination.autoscale import team_scale_event
from loomkin.errors import InvalidTransition, ToolError, UserError
from loomkin.ids import TaskId
from loomkin.tasks.stealing import busy_owners, queued_tasks
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.core.tasks import TaskView

__all__ = ["SCALING_TOOLS"]


class TaskClaimArgs(ToolArgs):
    """Arguments of ``task_claim``."""

    task_id: str | None = Field(
        default=None,
        description="The task to take; default: the most urgent task of your team queued on a "
        "busy agent (or waiting for anyone).",
    )


def _pick(deps: AgentContext, ctx: ToolContext, role: str) -> TaskView:
    board = deps.tasks.board
    waiting = queued_tasks(board, ctx.team_id) + board.ready_tasks(ctx.team_id)
    if not waiting:
        raise ToolError("No task of your team is waiting: nothing to claim.")
    matching = [v for v in waiting if not v.role or v.role == role]
    return (matching or waiting)[0]


@tool(name="task_claim", category="coordination", args=TaskClaimArgs)
async def task_claim(args: TaskClaimArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Take a ready task queued on a busy agent (or waiting unowned) when you are idle."""
    board = deps.tasks.board
    mine = [
        v
        for v in board.tasks()
        if v.owner is not None and v.owner.agent_id == ctx.agent_id and v.status in _OPEN
    ]
    if mine:
        raise ToolError(
            f"You already hold task {mine[0].title!r} (id {mine[0].task_id}); finish it first. "
            "Claims are for idle agents."
        )
    me = deps.caller(ctx)
    view = board.task(TaskId(args.task_id)) if args.task_id else _pick(deps, ctx, me.role)
    owner = view.owner
    if owner is not None and owner.agent_id not in busy_owners(board):
        raise ToolError(
            f"Task {view.title!r} is assigned to {owner.name}, who is free to start it; only a "
            "task queued on a busy agent can be claimed."
        )
    frm = f" from {owner.name}" if owner is not None else ""
    try:
        await deps.tasks.claim(
            view.task_id,
            me,
            expected_owner=None if owner is None else owner.agent_id,
            reason=f"claimed by {me.name}{frm} (work stealing)",
        )
    except InvalidTransition as exc:
        raise ToolError(f"Claim refused: {exc}. Pick another task (task_list).") from exc
    return (
        f"You claimed task {view.title!r} (id {view.task_id}){frm}. Its brief arrives as your "
        "next message; start on it then."
    )


_OPEN = frozenset({"assigned", "in_progress", "paused", "blocked", "partially_complete"})


class TeamScaleArgs(ToolArgs):
    """Arguments of ``team_scale``."""

    team: str | None = Field(default=None, description="Team name or id; default: yours.")
    pin: int | None = Field(default=None, ge=0, description="Exactly this many worker agents.")
    min: int | None = Field(default=None, ge=0, description="Keep at least this many.")
    max: int | None = Field(default=None, ge=1, description="Grow to at most this many.")
    clear: bool = Field(default=False, description="Drop the team's bounds (use the defaults).")
    reason: str = Field(default="", description="Why (shown in the activity feed).")


@tool(name="team_scale", category="coordination", args=TeamScaleArgs)
async def team_scale(args: TeamScaleArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Pin or bound how many worker agents the autoscaler keeps in your team (or a sub-team)."""
    team_id = deps.resolve_team(args.team) if args.team else ctx.team_id
    if team_id != ctx.team_id and deps.state.team(team_id).parent_team_id != ctx.team_id:
        raise ToolError("You may scale your own team or one of its sub-teams only.")
    try:
        event = team_scale_event(
            session_id=ctx.session_id,
            team_id=team_id,
            min_agents=args.min,
            max_agents=args.max,
            pinned=args.pin,
            clear=args.clear,
            limit=deps.settings.max_agents_per_team,
            by=ctx.agent_name,
            reason=args.reason,
        )
    except UserError as exc:
        raise ToolError(f"Refused: {exc}.") from exc
    await deps.log.append(event)
    name = deps.state.team(team_id).name
    if args.clear:
        return f"Team {name!r} scales within the default bounds again."
    if args.pin is not None:
        return f"Team {name!r} is pinned at {args.pin} worker agents."
    return (
        f"Team {name!r} now keeps between {args.min or 0} and {args.max or 'the default'} agents."
    )


SCALING_TOOLS: tuple[Tool[AgentContext], ...] = (task_claim, team_scale)
