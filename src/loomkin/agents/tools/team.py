"""Team tools: spawn sub-teams, hand out work, watch progress, discover teams, dissolve."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from loomkin.core.scheduling import choose_agent
from loomkin.errors import PolicyRefused, ToolError
from loomkin.ids import TaskId, TeamId
from loomkin.tasks import DependencySpec
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext

__all__ = ["TEAM_TOOLS"]


class RoleSpec(BaseModel):
    """One agent to spawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="Agent name, unique in the new team.")
    role: str = Field(description="A role name (coder, tester, ...) or a short description.")


class TeamSpawnArgs(ToolArgs):
    """Arguments of ``team_spawn``."""

    team_name: str
    roles: list[RoleSpec] = Field(min_length=1, description="The agents of the new team.")
    purpose: str = Field(default="", description="What the team is for.")


@tool(name="team_spawn", category="coordination", args=TeamSpawnArgs)
async def team_spawn(args: TeamSpawnArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Create a sub-team of your team with the given agents (they start idle)."""
    team_id, members = await deps.teams.spawn_team(
        name=args.team_name,
        parent_team_id=ctx.team_id,
        purpose=args.purpose,
        roles=[(spec.name, spec.role) for spec in args.roles],
        spawned_by=ctx.agent_id,
    )
    spawned = [f"{m.name} ({m.role})" for m in members]
    return (
        f"Created team {args.team_name!r} (id {team_id}) under your team with agents: "
        f"{', '.join(spawned)}. Give them work with team_assign, or create tasks in that team "
        f"(task_create with team={args.team_name!r}) and the scheduler assigns them."
    )


class TeamAssignArgs(ToolArgs):
    """Arguments of ``team_assign``."""

    agent: str = Field(description='Who: "name" or "team/name".')
    title: str
    description: str = ""
    priority: int = Field(default=3, ge=1, le=5)
    depends_on: list[str] = Field(default_factory=list)


@tool(name="team_assign", category="coordination", args=TeamAssignArgs)
async def team_assign(args: TeamAssignArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Create a task and give it to a named agent (it starts when its dependencies allow)."""
    target = deps.directory.resolve(args.agent, None if "/" in args.agent else ctx.team_id)
    task_id = await deps.tasks.create(
        session_id=ctx.session_id,
        team_id=target.team_id,
        title=args.title,
        description=args.description,
        priority=args.priority,
        role=target.role,
        created_by=ctx.agent_id,
        depends_on=[DependencySpec(depends_on=TaskId(d)) for d in args.depends_on],
        assign_to=target,  # in the same batch: never created but left for someone else
        assigned_by=ctx.agent_name,
    )
    return f"Task {task_id} {args.title!r} assigned to {target.name}."


class SmartAssignArgs(ToolArgs):
    """Arguments of ``team_smart_assign``."""

    task_id: str


@tool(name="team_smart_assign", category="coordination", args=SmartAssignArgs)
async def team_smart_assign(args: SmartAssignArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Give a task to the best agent of its team: idle first, then capability, then load."""
    tasks = deps.tasks
    view = tasks.task(args.task_id)
    candidates = deps.directory.candidates(view.team_id)
    choice = choose_agent(view, candidates, deps.scheduler_stats, tasks.board.load())
    if choice is None:
        raise ToolError(f"Team {view.team_id} has no agent that can take task {view.task_id}.")
    target = deps.directory.member(choice.agent_id)
    assert target is not None, "a candidate is a member of the session"
    await tasks.assign(view.task_id, target, by=ctx.agent_name, reason=choice.reason)
    return f"Task {view.task_id} assigned to {target.name}: {choice.reason}."


class TeamProgressArgs(ToolArgs):
    """Arguments of ``team_progress``."""

    team: str | None = Field(default=None, description="Team name or id; default: yours.")


@tool(name="team_progress", category="coordination", args=TeamProgressArgs, idempotent=True)
async def team_progress(args: TeamProgressArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Show a team's agents (status, task, cost) and tasks (status, owner, priority)."""
    team_id = deps.resolve_team(args.team) if args.team else ctx.team_id
    return progress_report(deps, team_id)


def progress_report(deps: AgentContext, team_id: TeamId) -> str:
    """Readable progress of one team."""
    team = deps.state.team(team_id)
    lines = [f"Team {team.name} (id {team_id})", "Agents:"]
    for member in deps.directory.members():
        if member.team_id != team_id:
            continue
        task = f", task {member.task_id}" if member.task_id else ""
        lines.append(
            f"- {member.name} ({member.role}): {member.status}{task}, ${member.cost_usd:.4f}"
        )
    lines.append("Tasks:")
    views = deps.tasks.board.tasks(team_id)
    for view in views:
        owner = view.owner.name if view.owner else "unassigned"
        lines.append(f"- [{view.status}] {view.task_id} {view.title!r} ({owner}, p{view.priority})")
    if not views:
        lines.append("- none")
    return "\n".join(lines)


class ListTeamsArgs(ToolArgs):
    """Arguments of ``list_teams`` (none)."""


@tool(name="list_teams", category="coordination", args=ListTeamsArgs, idempotent=True)
async def list_teams(args: ListTeamsArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Discover your parent, sibling and child teams: members, roles, statuses, tasks."""
    state = deps.state
    parent = state.parent(ctx.team_id)
    sections: list[tuple[str, list[TeamId]]] = [
        ("Parent team", [parent.team_id] if parent else []),
        ("Sibling teams", [t.team_id for t in state.siblings(ctx.team_id)]),
        ("Child teams", [t.team_id for t in state.children(ctx.team_id)]),
    ]
    lines: list[str] = []
    for title, team_ids in sections:
        lines.append(f"## {title}")
        if not team_ids:
            lines.append("(none)")
        for team_id in team_ids:
            lines.append(_team_summary(deps, team_id))
    lines.append(
        'Address an agent of another team as "team/name", a whole team as "team:<team>"; '
        "task_list with team=<team> shows a team's tasks."
    )
    return "\n".join(lines)


_HELD = frozenset({"assigned", "in_progress", "paused", "blocked", "partially_complete"})


def _team_summary(deps: AgentContext, team_id: TeamId) -> str:
    team = deps.state.team(team_id)
    board = deps.tasks.board
    held = {
        v.owner.agent_id: v
        for v in board.tasks(team_id)
        if v.owner is not None and v.status in _HELD
    }
    members = []
    for member in deps.directory.members():
        if member.team_id == team_id:
            task = board.get(member.task_id) if member.task_id else held.get(member.agent_id)
            doing = f", on {task.title!r} ({task.task_id})" if task else ""
            members.append(f"{member.name} ({member.role}, {member.status}{doing})")
    purpose = f" — {team.purpose}" if team.purpose else ""
    return f"- {team.name} (id {team_id}){purpose}: " + ("; ".join(members) or "no agents")


class TeamDissolveArgs(ToolArgs):
    """Arguments of ``team_dissolve``."""

    team: str = Field(description="Name or id of a team below yours.")
    reason: str = "work done"


@tool(name="team_dissolve", category="coordination", args=TeamDissolveArgs)
async def team_dissolve(args: TeamDissolveArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Dissolve a sub-team of yours (and its sub-teams)."""
    team_id = deps.resolve_team(args.team)
    below = {t.team_id for t in deps.state.subtree(ctx.team_id)}
    if team_id == ctx.team_id or team_id not in below:
        raise PolicyRefused(f"team {args.team!r} is not below your team; you cannot dissolve it")
    await deps.teams.dissolve(team_id, reason=args.reason, by=ctx.agent_id)
    return f"Team {args.team!r} dissolved."


TEAM_TOOLS: tuple[Tool[AgentContext], ...] = (
    team_spawn,
    team_assign,
    team_smart_assign,
    team_progress,
    list_teams,
    team_dissolve,
)
