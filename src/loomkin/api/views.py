"""Read models of the page: a session's agents, teams, tasks, budgets and prompts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.api.schemas import (
    AgentOut,
    BudgetOut,
    DependencyOut,
    PermissionOut,
    SessionDetail,
    SessionOut,
    TaskOut,
    TeamOut,
)
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from loomkin.api.tracker import PromptTracker
    from loomkin.core.state import SessionView
    from loomkin.service.runtime import Loomkin
    from loomkin.service.session import Session

__all__ = ["WORKING_STATUSES", "session_detail", "session_out"]

WORKING_STATUSES = frozenset({"thinking", "executing_tool", "waiting_permission"})


def session_out(view: SessionView, *, is_open: bool) -> SessionOut:
    """Return the list entry of a session."""
    return SessionOut(
        session_id=view.session_id,
        project_root=view.project_root,
        title=view.title,
        model=view.model,
        status=view.status,
        open=is_open,
    )


def session_detail(loomkin: Loomkin, session: Session, tracker: PromptTracker) -> SessionDetail:
    """Return everything the page shows of ``session``."""
    position = loomkin.log.last_position
    agents = agent_cards(loomkin, session, tracker)
    return SessionDetail(
        session=session_out(loomkin.state.session(session.session_id), is_open=True),
        position=position,
        working=sum(1 for a in agents if a.status in WORKING_STATUSES),
        agents=agents,
        teams=team_tree(loomkin, session.session_id),
        tasks=task_nodes(loomkin, session.session_id),
        dependencies=task_edges(loomkin, session.session_id),
        budgets=budgets(session),
        permissions=prompts(session, tracker),
    )


def agent_cards(loomkin: Loomkin, session: Session, tracker: PromptTracker) -> list[AgentOut]:
    """Return the agent cards, in spawn order."""
    cards = []
    for info in session.agents():
        task = loomkin.board.get(TaskId(info.task_id)) if info.task_id else None
        cards.append(
            AgentOut(
                agent_id=info.agent_id,
                name=info.name,
                role=info.role,
                team_id=info.team_id,
                team_name=info.team_name,
                status=info.status,
                task_id=info.task_id,
                task_title=task.title if task is not None else None,
                current_tool=info.current_tool,
                input_tokens=info.input_tokens,
                output_tokens=info.output_tokens,
                cost_usd=info.cost_usd,
                pause_queued=tracker.pause_queued(info.agent_id),
            )
        )
    return cards


def team_tree(loomkin: Loomkin, session_id: str) -> list[TeamOut]:
    """Return the session's teams (dissolved ones included), in creation order."""
    return [
        TeamOut(
            team_id=t.team_id,
            name=t.name,
            parent_team_id=t.parent_team_id,
            depth=t.depth,
            status=t.status,
            purpose=t.purpose,
            agent_ids=list(t.agent_ids),
            child_ids=list(t.child_ids),
        )
        for t in loomkin.state.teams(session_id)
    ]


def task_nodes(loomkin: Loomkin, session_id: str) -> list[TaskOut]:
    """Return the session's tasks."""
    return [
        TaskOut(
            task_id=t.task_id,
            team_id=t.team_id,
            title=t.title,
            status=t.status,
            owner=t.owner.name if t.owner is not None else None,
            priority=t.priority,
            effective_priority=t.effective_priority,
            milestones=list(t.milestones),
        )
        for t in loomkin.board.tasks()
        if t.session_id == session_id
    ]


def task_edges(loomkin: Loomkin, session_id: str) -> list[DependencyOut]:
    """Return the dependencies between the session's tasks."""
    edges: list[DependencyOut] = []
    for task in loomkin.board.tasks():
        if task.session_id != session_id:
            continue
        edges.extend(
            DependencyOut(
                task_id=d.task_id, depends_on=d.depends_on, kind=d.kind, milestone=d.milestone
            )
            for d in loomkin.board.dependencies(task.task_id)
        )
    return edges


def budgets(session: Session) -> list[BudgetOut]:
    """Return the session's spending, then each team's, against the configured limits."""
    limits = session.runtime.settings.budgets
    agents = session.agents()
    out = [
        BudgetOut(
            scope="session",
            team_id=None,
            name="session",
            cost_usd=sum(a.cost_usd for a in agents),
            tokens=sum(a.input_tokens + a.output_tokens for a in agents),
            limit_usd=limits.session_usd,
            limit_tokens=limits.session_tokens,
        )
    ]
    teams: dict[str, str] = {a.team_id: a.team_name for a in agents}
    for team_id, name in teams.items():
        members = [a for a in agents if a.team_id == team_id]
        out.append(
            BudgetOut(
                scope="team",
                team_id=team_id,
                name=name,
                cost_usd=sum(a.cost_usd for a in members),
                tokens=sum(a.input_tokens + a.output_tokens for a in members),
                limit_usd=limits.team_usd,
                limit_tokens=limits.team_tokens,
            )
        )
    return out


def prompts(session: Session, tracker: PromptTracker) -> list[PermissionOut]:
    """Return the session's open permission prompts, with arguments and resolved target."""
    out = []
    for agent in session.runtime.agents.values():
        pending = agent.memory.pending_permission
        if pending is None:
            continue
        known = tracker.prompts.get(pending.request_id)
        out.append(
            PermissionOut(
                request_id=pending.request_id,
                agent_id=agent.agent_id,
                agent=agent.name,
                tool=pending.tool,
                category=known.category if known else "",
                arguments=dict(known.arguments) if known else {},
                target=pending.target,
            )
        )
    return out
