"""Task tools: create, read, update, complete, depend, reach milestones, publish output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.agents.tools.review import request_review
from loomkin.errors import TaskCycleError, ToolError
from loomkin.ids import TaskId
from loomkin.tasks import DependencySpec, Handoff
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.core.tasks import TaskBoard, TaskView

__all__ = ["TASK_TOOLS"]

DepKindArg = Literal["blocks", "informs", "requires_output"]


def _current_task(ctx: ToolContext, task_id: str | None) -> TaskId:
    if task_id:
        return TaskId(task_id)
    if ctx.task_id is None:
        raise ToolError("You have no task in progress; pass task_id explicitly.")
    return ctx.task_id


def _own_task(deps: AgentContext, ctx: ToolContext, task_id: TaskId, what: str) -> TaskView:
    """Return the task, refusing readably when another agent owns it.

    An unowned task goes on to the board's transition table, which names what is allowed.
    """
    view = deps.tasks.task(task_id)
    if view.owner is not None and view.owner.agent_id != ctx.agent_id:
        raise ToolError(
            f"Task {view.title!r} (id {view.task_id}) belongs to {view.owner.name}; only its "
            f"owner may {what}. Send {view.owner.name} a message instead."
        )
    return view


def _titled(board: TaskBoard, text: str) -> str:
    """Append the titles of the task ids ``text`` mentions (errors name tasks by id)."""
    named = [f"{view.task_id} is {view.title!r}" for view in board.tasks() if view.task_id in text]
    return f"{text} ({'; '.join(named)})" if named else text


def _line(view: TaskView) -> str:
    owner = view.owner.name if view.owner else "unassigned"
    prio = f"p{view.priority}"
    if view.effective_priority != view.priority:
        prio += f"→p{view.effective_priority}"
    return f"- [{view.status}] {view.task_id} {view.title!r} ({owner}, {prio})"


class TaskCreateArgs(ToolArgs):
    """Arguments of ``task_create``."""

    title: str = Field(description="Short title of the task.")
    description: str = Field(default="", description="What to do, with acceptance criteria.")
    priority: int = Field(default=3, ge=1, le=5, description="1 (highest) to 5 (lowest).")
    role: str = Field(default="", description="Role that should do it (coder, tester, ...).")
    depends_on: list[str] = Field(default_factory=list, description="Task ids it waits for.")
    dep_kind: DepKindArg = Field(
        default="blocks",
        description="blocks: wait for completion; requires_output: wait for (partial) output "
        "and receive it; informs: never wait.",
    )
    milestone: str | None = Field(
        default=None, description="Wait only for this named milestone of each predecessor."
    )
    team: str | None = Field(default=None, description="Team name or id; default: yours.")


@tool(name="task_create", category="coordination", args=TaskCreateArgs)
async def task_create(args: TaskCreateArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Put a new task on a team's board, optionally depending on other tasks."""
    team_id = deps.resolve_team(args.team) if args.team else ctx.team_id
    specs = [
        DependencySpec(depends_on=TaskId(d), kind=args.dep_kind, milestone=args.milestone)
        for d in args.depends_on
    ]
    task_id = await deps.tasks.create(
        session_id=ctx.session_id,
        team_id=team_id,
        title=args.title,
        description=args.description,
        priority=args.priority,
        role=args.role,
        created_by=ctx.agent_id,
        depends_on=specs,
    )
    waits = f", waiting for {', '.join(args.depends_on)}" if args.depends_on else ""
    return f"Created task {task_id} {args.title!r}{waits}."


class TaskListArgs(ToolArgs):
    """Arguments of ``task_list``."""

    team: str | None = Field(default=None, description="Team name or id; default: yours.")
    status: str | None = Field(default=None, description="Only tasks with this status.")


@tool(name="task_list", category="coordination", args=TaskListArgs, idempotent=True)
async def task_list(args: TaskListArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """List the tasks of a team (yours by default, or another team's by name)."""
    team_id = deps.resolve_team(args.team) if args.team else ctx.team_id
    views = [
        v for v in deps.tasks.board.tasks(team_id) if args.status is None or v.status == args.status
    ]
    if not views:
        return "No tasks."
    return "\n".join(_line(v) for v in views)


class TaskReadArgs(ToolArgs):
    """Arguments of ``task_read``."""

    task_id: str = Field(description="The task to read (any team's).")


@tool(name="task_read", category="coordination", args=TaskReadArgs, idempotent=True)
async def task_read(args: TaskReadArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Read a task in full: description, status, owner, output, milestones, dependencies."""
    board = deps.tasks.board
    view = board.task(TaskId(args.task_id))
    lines = [_line(view)]
    if view.description:
        lines.append(f"Description: {view.description}")
    if view.milestones:
        lines.append(f"Milestones reached: {', '.join(view.milestones)}")
    for dep in board.dependencies(view.task_id):
        lines.append(f"Depends on: {dep.describe()}")
    if view.result:
        lines.append(f"Result:\n{view.result}")
    for chunk in view.partial_chunks:
        lines.append(f"Partial output #{chunk.seq}:\n{chunk.content}")
    if view.handoff is not None:
        lines.extend(view.handoff.lines())
    return "\n".join(lines)


class TaskUpdateArgs(ToolArgs):
    """Arguments of ``task_update``."""

    status: Literal["in_progress", "blocked", "ready_for_review", "partially_complete", "paused"]
    note: str = Field(default="", description="Why (for blocked: what you wait for).")
    task_id: str | None = Field(default=None, description="Default: your current task.")
    reviewer: str | None = Field(
        default=None,
        description="For ready_for_review: who reviews (default: a reviewer of the team, "
        "else its lead).",
    )


@tool(name="task_update", category="coordination", args=TaskUpdateArgs)
async def task_update(args: TaskUpdateArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Report your task's status: blocked, ready for review, partially complete, ..."""
    task_id = _current_task(ctx, args.task_id)
    view = _own_task(deps, ctx, task_id, "change its status")
    if args.status == "ready_for_review":
        return await request_review(deps, ctx, view, args.note, args.reviewer)
    await deps.tasks.set_status(task_id, args.status, by=ctx.agent_id, note=args.note)
    return f"Task {task_id} is now {args.status}."


class TaskCompleteArgs(ToolArgs):
    """Arguments of ``task_complete``."""

    result: str = Field(description="What you produced or found (this is what others read).")
    actions_taken: list[str] = Field(default_factory=list)
    files_changed: list[str] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    task_id: str | None = Field(default=None, description="Default: your current task.")


@tool(name="task_complete", category="coordination", args=TaskCompleteArgs)
async def task_complete(args: TaskCompleteArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Complete a task with its result and a structured hand-off."""
    task_id = _current_task(ctx, args.task_id)
    _own_task(deps, ctx, task_id, "complete it")
    handoff = Handoff(
        actions_taken=tuple(args.actions_taken),
        files_changed=tuple(args.files_changed),
        decisions=tuple(args.decisions),
        open_questions=tuple(args.open_questions),
    )
    await deps.tasks.complete(task_id, by=ctx.agent_id, result=args.result, handoff=handoff)
    return f"Task {task_id} completed."


class AddDependencyArgs(ToolArgs):
    """Arguments of ``add_dependency``."""

    task_id: str = Field(description="The task that must wait.")
    depends_on: str = Field(description="The task it waits for (may be another team's).")
    kind: DepKindArg = "blocks"
    milestone: str | None = Field(default=None, description="Wait only for this milestone.")


@tool(name="add_dependency", category="coordination", args=AddDependencyArgs)
async def add_dependency(args: AddDependencyArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Make a task wait for another while work runs (cycles are refused)."""
    tasks = deps.tasks
    try:
        added = await tasks.add_dependency(
            TaskId(args.task_id),
            TaskId(args.depends_on),
            kind=args.kind,
            milestone=args.milestone,
            by=ctx.agent_id,
        )
    except TaskCycleError as exc:
        raise ToolError(f"Refused: {_titled(tasks.board, str(exc))}.") from exc
    if not added:
        return "That dependency already exists."
    what = f"milestone {args.milestone!r} of " if args.milestone else ""
    return f"Task {args.task_id} now waits ({args.kind}) for {what}{args.depends_on}."


class EmitMilestoneArgs(ToolArgs):
    """Arguments of ``emit_milestone``."""

    name: str = Field(description='Milestone name, e.g. "interface" or "schema_ready".')
    note: str = Field(default="", description="What is ready now.")
    task_id: str | None = Field(default=None, description="Default: your current task.")


@tool(name="emit_milestone", category="coordination", args=EmitMilestoneArgs)
async def emit_milestone(args: EmitMilestoneArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Announce that your task reached a named milestone (tasks waiting on it may start)."""
    task_id = _current_task(ctx, args.task_id)
    view = deps.tasks.task(task_id)
    if view.owner is None or view.owner.agent_id != ctx.agent_id:
        owner = "nobody yet" if view.owner is None else view.owner.name
        raise ToolError(
            f"Only the owner of task {view.title!r} (id {task_id}) may emit its milestones, "
            f"and that is {owner}, not you."
        )
    if deps.speculation.holds_back(task_id):
        # Unconfirmed speculative work: no dependent may start on it yet.
        held = await deps.speculation.hold_milestone(
            task_id, args.name, by=ctx.agent_id, note=args.note
        )
        return f"Milestone {args.name!r} of task {task_id} " + (
            "recorded; tasks waiting on it start once your assumptions are confirmed."
            if held
            else "was already recorded."
        )
    new = await deps.tasks.emit_milestone(task_id, args.name, by=ctx.agent_id, note=args.note)
    return f"Milestone {args.name!r} of task {task_id} " + (
        "recorded." if new else "was already recorded."
    )


class PublishPartialArgs(ToolArgs):
    """Arguments of ``publish_partial``."""

    content: str = Field(description="The next chunk of your task's output.")
    completed_items: int | None = Field(default=None, ge=0)
    total_items: int | None = Field(default=None, ge=0)
    task_id: str | None = Field(default=None, description="Default: your current task.")


@tool(name="publish_partial", category="coordination", args=PublishPartialArgs)
async def publish_partial(args: PublishPartialArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Publish part of your task's output now, so dependents can start consuming it."""
    task_id = _current_task(ctx, args.task_id)
    if deps.speculation.holds_back(task_id):
        raise ToolError(
            "Your task is speculative and its assumptions are not confirmed yet: publish "
            "partial output once they are (you will be told), or just complete the task."
        )
    seq = await deps.tasks.publish_partial(
        task_id,
        args.content,
        by=ctx.agent_id,
        completed_items=args.completed_items,
        total_items=args.total_items,
    )
    return f"Published chunk {seq} of task {task_id}."


TASK_TOOLS: tuple[Tool[AgentContext], ...] = (
    task_create,
    task_list,
    task_read,
    task_update,
    task_complete,
    add_dependency,
    emit_milestone,
    publish_partial,
)
