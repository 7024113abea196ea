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

if TYPE_CHECKING:
    from loomkin.service import Loomkin, Session, StoredSession

__all__ = ["WORKING_STATUSES", "session_detail", "session_out"]

WORKING_STATUSES = frozenset({"thinking", "executing_tool", "waiting_permission"})


def session_out(stored: StoredSession) -> SessionOut:
    """Return the list entry of a session."""
    return SessionOut(
        session_id=stored.session_id,
        project_root=stored.project_root,
        title=stored.title,
        model=stored.model,
        status=stored.status,
        open=stored.open,
    )


def session_detail(loomkin: Loomkin, session: Session) -> SessionDetail:
    """Return everything the page shows of ``session``."""
    position = loomkin.last_position
    agents = agent_cards(session)
    return SessionDetail(
        session=session_out(loomkin.stored_session(session.session_id)),
        position=position,
        working=sum(1 for a in agents if a.status in WORKING_STATUSES),
        agents=agents,
        teams=team_tree(session),
        tasks=task_nodes(session),
        dependencies=task_edges(session),
        budgets=budgets(session),
        permissions=prompts(session),
    )


def agent_cards(session: Session) -> list[AgentOut]:
    """Return the agent cards, in spawn order."""
    titles = {t.task_id: t.title for t in session.tasks()}
    return [
        AgentOut(
            agent_id=info.agent_id,
            name=info.name,
            role=info.role,
            team_id=info.team_id,
            team_name=info.team_name,
            status=info.status,
            task_id=info.task_id,
            task_title=titles.get(info.task_id) if info.task_id else None,
            current_tool=info.current_tool,
            input_tokens=info.input_tokens,
            output_tokens=info.output_tokens,
            cost_usd=info.cost_usd,
            pause_queued=info.pause_queued,
        )
        for info in session.agents()
    ]


def team_tree(session: Session) -> list[TeamOut]:
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
        for t in session.teams()
    ]


def task_nodes(session: Session) -> list[TaskOut]:
    """Return the session's tasks."""
    return [
        TaskOut(
            task_id=t.task_id,
            team_id=t.team_id,
            title=t.title,
            status=t.status,
            owner=t.owner,
            priority=t.priority,
            effective_priority=t.effective_priority,
            milestones=list(t.milestones),
        )
        for t in session.tasks()
    ]


def task_edges(session: Session) -> list[DependencyOut]:
    """Return the dependencies between the session's tasks."""
    return [
        DependencyOut(
            task_id=d.task_id, depends_on=d.depends_on, kind=d.kind, milestone=d.milestone
        )
        for d in session.dependencies()
    ]


def budgets(session: Session) -> list[BudgetOut]:
    """Return the session's spending, then each team's, against the configured limits."""
    return [
        BudgetOut(
            scope=b.scope,
            team_id=b.team_id,
            name=b.name,
            cost_usd=b.cost_usd,
            tokens=b.tokens,
            limit_usd=b.limit_usd,
            limit_tokens=b.limit_tokens,
        )
        for b in session.budgets()
    ]


def prompts(session: Session) -> list[PermissionOut]:
    """Return the session's open permission prompts, with arguments and resolved target."""
    return [
        PermissionOut(
            request_id=p.request_id,
            agent_id=p.agent_id,
            agent=p.agent,
            tool=p.tool,
            category=p.category,
            arguments=dict(p.arguments),
            target=p.target,
        )
        for p in session.pending_permissions()
    ]
