"""Speculation tools: start a task ahead of its blockers, state assumptions, cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pydantic import Field, JsonValue

from loomkin.coordination.speculation import AssumptionSpec
from loomkin.errors import ToolError
from loomkin.ids import TaskId
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.core.events.base import JSON

__all__ = ["SPECULATION_TOOLS"]


class AssumptionArg(ToolArgs):
    """One assumption about a blocker's output."""

    on_task: str | None = Field(
        default=None, description="The blocker it is about (default: the first blocker)."
    )
    key: str = Field(
        default="",
        description="A key of the blocker's hand-off or milestone payload (result, "
        "files_changed, decisions, or a name written as 'name: value' in its decisions).",
    )
    value: JsonValue = Field(default=None, description="The value you assume for that key.")
    text: str = Field(default="", description="A prose assumption (instead of key/value).")

    def spec(self) -> AssumptionSpec:
        """The assumption as the speculation service takes it."""
        on = None if self.on_task is None else TaskId(self.on_task)
        value = cast("JSON", self.value)  # JSON values, as pydantic checked them
        return AssumptionSpec(on_task=on, key=self.key, value=value, text=self.text)


class SpeculateArgs(ToolArgs):
    """Arguments of ``speculate``."""

    task_id: str = Field(description="A pending task whose blockers have not finished.")
    assumptions: list[AssumptionArg] = Field(
        default_factory=list, min_length=1, description="What you assume about their output."
    )


@tool(name="speculate", category="coordination", args=SpeculateArgs)
async def speculate(args: SpeculateArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Start a task before its blockers finish, on stated assumptions, in your own workspace."""
    member = deps.caller(ctx)
    if ctx.task_id is not None and deps.tasks.is_open(ctx.task_id):
        raise ToolError("Finish or release your current task before you speculate on another.")
    started = await deps.speculation.speculate(
        member, args.task_id, [a.spec() for a in args.assumptions]
    )
    return (
        f"Speculating on task {args.task_id}: your file and shell tools now work in "
        f"{started.workspace} (nothing reaches the shared tree until your assumptions are "
        "checked). The task's brief follows as a message; complete it as usual."
    )


class AssumptionAddArgs(AssumptionArg):
    """Arguments of ``assumption_add``."""

    task_id: str | None = Field(default=None, description="Default: your current task.")


@tool(name="assumption_add", category="coordination", args=AssumptionAddArgs)
async def assumption_add(args: AssumptionAddArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Add an assumption to a running speculation (checked when the blocker finishes)."""
    task_id = args.task_id or ctx.task_id
    if task_id is None:
        raise ToolError("You have no task in progress; pass task_id.")
    member = deps.caller(ctx)
    assumption_id = await deps.speculation.add_assumption(member, task_id, args.spec())
    return f"Assumption {assumption_id} recorded on task {task_id}."


class SpeculationCancelArgs(ToolArgs):
    """Arguments of ``speculation_cancel``."""

    task_id: str = Field(description="The speculative task to discard and re-queue.")


@tool(name="speculation_cancel", category="coordination", args=SpeculationCancelArgs)
async def speculation_cancel(
    args: SpeculationCancelArgs, ctx: ToolContext, deps: AgentContext
) -> str:
    """Discard a running speculation: its workspace is removed and the task re-queued."""
    await deps.speculation.cancel(args.task_id, by=ctx.agent_name)
    return f"Speculation on task {args.task_id} discarded; the task is pending again."


SPECULATION_TOOLS: tuple[Tool[AgentContext], ...] = (speculate, assumption_add, speculation_cancel)
