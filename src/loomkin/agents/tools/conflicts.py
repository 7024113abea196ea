"""Conflict tools: claim a region of a file before changing it; abort another agent's task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from loomkin.errors import ToolError
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool
from loomkin.tools.builtin._fs import relative, resolve

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext

__all__ = ["CONFLICT_TOOLS"]


class ClaimRegionArgs(ToolArgs):
    """Arguments of ``claim_region``."""

    path: str = Field(description="File path, relative to the project root.")
    start_line: int = Field(default=1, ge=1, description="First line you will change.")
    end_line: int = Field(default=0, ge=0, description="Last line you will change (0: to EOF).")


@tool(name="claim_region", category="coordination", args=ClaimRegionArgs)
async def claim_region(args: ClaimRegionArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Announce the lines of a file you are about to change, so overlapping work is caught.

    The claim lasts until your current task ends. If another agent claimed an overlapping
    region, you are told who, and both of you get a conflict notice.
    """
    if args.end_line and args.end_line < args.start_line:
        raise ToolError("end_line must be 0 (to the end) or at least start_line")
    rel = relative(ctx.project_root, resolve(ctx.project_root, args.path))
    overlapping = await deps.conflicts.claim(deps.caller(ctx), rel, args.start_line, args.end_line)
    span = f"lines {args.start_line}-{args.end_line or 'end'}"
    if not overlapping:
        return f"Claimed {span} of {rel!r}."
    who = ", ".join(
        f"{c.agent_name} (lines {c.start_line}-{c.end_line or 'end'})" for c in overlapping
    )
    return (
        f"Claimed {span} of {rel!r}, but it overlaps the claim of {who}. Agree with them "
        "(peer_message) who changes what before you edit."
    )


class AbortTaskArgs(ToolArgs):
    """Arguments of ``abort_task``."""

    agent: str = Field(description='The agent: "name" (your team) or "team/name".')
    reason: str = Field(description="Why the task is aborted (the agent reads it).")


@tool(name="abort_task", category="coordination", args=AbortTaskArgs)
async def abort_task(args: AbortTaskArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Stop an agent's current task at once (urgent): its partial result is kept."""
    target = deps.directory.resolve(args.agent, None if "/" in args.agent else ctx.team_id)
    if target.agent_id == ctx.agent_id:
        raise ToolError("You cannot abort your own task; finish or update it instead.")
    task_id = target.task_id
    if task_id is None:
        raise ToolError(f"{target.name} has no task in progress.")
    await deps.log.append(
        deps.messages.message(
            "abort",
            f"{ctx.agent_name} aborted your task {task_id}: {args.reason}",
            to_agent=target.agent_id,
            sender=deps.caller(ctx),
            data={"task_id": task_id},
        )
    )
    return f"Sent an urgent abort to {target.name} for task {task_id}."


CONFLICT_TOOLS: tuple[Tool[AgentContext], ...] = (claim_region, abort_task)
