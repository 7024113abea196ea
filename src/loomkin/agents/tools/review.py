"""Review hand-off: a task ready for review asks a reviewer, and ``task_review`` answers.

``task_update(status="ready_for_review")`` asks; approving completes the task, asking for
changes sends it back to its owner.

The reviewer is the one the owner names, else a ``reviewer`` of the task's team, else the
team's lead (the Concierge when the team has none). The request goes in the batch of the
status change, and the owner is free for other work meanwhile: a task ready for review is
not its load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.errors import ToolError
from loomkin.ids import TaskId
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.coordination import Member
    from loomkin.core.taskview import TaskView

__all__ = ["REVIEW_TOOLS", "request_review"]


def _reviewer(
    deps: AgentContext, ctx: ToolContext, view: TaskView, named: str | None
) -> Member | None:
    if named:
        return deps.directory.resolve(named, None if "/" in named else ctx.team_id)
    reviewers = [
        m
        for m in deps.directory.members()
        if m.role == "reviewer" and m.team_id == view.team_id and m.agent_id != ctx.agent_id
    ]
    if reviewers:
        return reviewers[0]
    lead = deps.directory.lead_of(view.team_id)
    return None if lead is None or lead.agent_id == ctx.agent_id else lead


async def request_review(
    deps: AgentContext, ctx: ToolContext, view: TaskView, note: str, reviewer: str | None
) -> str:
    """Move the task to ``ready_for_review`` and ask the reviewer, in one batch."""
    deps.tasks.board.check_status(view.task_id, "ready_for_review")  # a refused move says why
    target = _reviewer(deps, ctx, view, reviewer)
    if target is None:  # nobody to ask: the owner finishes it (task_complete) when ready
        await deps.tasks.set_status(view.task_id, "ready_for_review", by=ctx.agent_id, note=note)
        return f"Task {view.task_id} is now ready_for_review."
    caller = deps.caller(ctx)
    what = f": {note}" if note else ""
    text = (
        f"{caller.name} asks you to review task {view.title!r} (id {view.task_id}){what}. "
        f"Read it with task_read, then answer with task_review(task_id={view.task_id!r}, "
        'verdict="approve" | "changes", note=...).'
    )
    request = deps.messages.message(
        "review_request", text, to_agent=target.agent_id, sender=caller,
        data={"task_id": view.task_id},
    )  # fmt: skip
    await deps.tasks.set_status(
        view.task_id, "ready_for_review", by=ctx.agent_id, note=note, also=[request]
    )
    return (
        f"Task {view.task_id} is ready for review; {target.name} was asked. You are free for "
        "other work: if changes are needed, the task comes back to you with a message."
    )


class TaskReviewArgs(ToolArgs):
    """Arguments of ``task_review``."""

    task_id: str = Field(description="The task that is ready for review.")
    verdict: Literal["approve", "changes"] = Field(
        description="approve: the task is completed; changes: it goes back to its owner."
    )
    note: str = Field(default="", description="What you found (the owner reads it).")


@tool(name="task_review", category="coordination", args=TaskReviewArgs)
async def task_review(args: TaskReviewArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Answer a review request: approve (completes the task) or ask for changes."""
    view = deps.tasks.task(TaskId(args.task_id))
    if view.status != "ready_for_review":
        raise ToolError(f"Task {view.title!r} is {view.status}, not ready for review.")
    if view.owner is not None and view.owner.agent_id == ctx.agent_id:
        raise ToolError("You cannot review your own task.")
    if args.verdict == "approve":
        result = view.result or args.note or f"approved by {ctx.agent_name}"
        await deps.tasks.set_status(
            view.task_id, "completed", by=ctx.agent_id, note=f"approved: {args.note}",
            result=result,
        )  # fmt: skip
        return f"Task {view.title!r} approved and completed."
    if view.owner is None:
        raise ToolError(f"Task {view.title!r} has no owner to send it back to.")
    caller = deps.caller(ctx)
    back = deps.messages.message(
        "review_request",
        f"{caller.name} reviewed task {view.title!r} (id {view.task_id}) and asks for "
        f"changes: {args.note or '(no note)'}. It is yours again: make them, then "
        "task_complete (or task_update ready_for_review).",
        to_agent=view.owner.agent_id,
        sender=caller,
        data={"task_id": view.task_id},
    )
    await deps.tasks.set_status(
        view.task_id, "in_progress", by=ctx.agent_id, note=f"changes: {args.note}", also=[back]
    )
    return f"Task {view.title!r} went back to {view.owner.name} with your note."


REVIEW_TOOLS: tuple[Tool[AgentContext], ...] = (task_review,)
