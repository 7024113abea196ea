"""Read models of the page: a session's agents, teams, tasks, budgets and prompts."""

from __future__ import annotations

from dataclasses import asdict
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
    UserQuestionOut,
)

if TYPE_CHECKING:
    from loomkin.service import (
        AgentInfo,
        DependencyInfo,
        Loomkin,
        Session,
        StoredSession,
        TaskInfo,
        TeamInfo,
    )

__all__ = [
    "WORKING_STATUSES",
    "session_detail",
    "session_out",
    "stored_detail",
    "user_questions",
]

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
        questions=user_questions(session),
    )


def agent_cards(session: Session) -> list[AgentOut]:
    """Return the agent cards, in spawn order."""
    titles = {t.task_id: t.title for t in session.tasks()}
    return [_agent_out(info, titles) for info in session.agents()]


def _agent_out(info: AgentInfo, titles: dict[str, str]) -> AgentOut:
    return AgentOut(
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
        status_reason=info.status_reason,
        streaming_text=info.streaming_text,
        worker=info.worker,
    )


def team_tree(session: Session) -> list[TeamOut]:
    """Return the session's teams (dissolved ones included), in creation order."""
    return [_team_out(t) for t in session.teams()]


def _team_out(t: TeamInfo) -> TeamOut:
    return TeamOut(
        team_id=t.team_id,
        name=t.name,
        parent_team_id=t.parent_team_id,
        depth=t.depth,
        status=t.status,
        purpose=t.purpose,
        agent_ids=list(t.agent_ids),
        child_ids=list(t.child_ids),
    )


def task_nodes(session: Session) -> list[TaskOut]:
    """Return the session's tasks."""
    return [_task_out(t) for t in session.tasks()]


def _task_out(t: TaskInfo) -> TaskOut:
    return TaskOut(
        task_id=t.task_id,
        team_id=t.team_id,
        title=t.title,
        status=t.status,
        owner=t.owner,
        priority=t.priority,
        effective_priority=t.effective_priority,
        milestones=list(t.milestones),
    )


def task_edges(session: Session) -> list[DependencyOut]:
    """Return the dependencies between the session's tasks."""
    return [_dep_out(d) for d in session.dependencies()]


def _dep_out(d: DependencyInfo) -> DependencyOut:
    return DependencyOut(
        task_id=d.task_id, depends_on=d.depends_on, kind=d.kind, milestone=d.milestone
    )


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
    out = []
    for p in session.pending_permissions():
        preview = session.permission_preview(p)
        out.append(
            PermissionOut(
                request_id=p.request_id,
                agent_id=p.agent_id,
                agent=p.agent,
                tool=p.tool,
                category=p.category,
                arguments=dict(p.arguments),
                target=p.target,
                diff=preview.diff,
                command=preview.command,
                always=preview.always,
            )
        )
    return out


def user_questions(session: Session) -> list[UserQuestionOut]:
    """Return the questions agents asked the user that are still open."""
    return [UserQuestionOut(**asdict(q)) for q in session.questions_for_user()]


async def stored_detail(loomkin: Loomkin, session_id: str) -> SessionDetail:
    """Return a session this server does not host, read-only: as its log last left it.

    Its agents' last statuses, teams, tasks and spend come from the shared projections and
    the log; it has no prompts (nobody can answer them here) and nothing is working.
    """
    stored = loomkin.stored_session(session_id)
    spend = await loomkin.spend(session_id)
    agents = [_agent_out(a, {}) for a in loomkin.stored_agents(session_id)]
    titles = {t.task_id: t.title for t in loomkin.tasks(session_id)}
    agents = [a.model_copy(update={"task_title": titles.get(a.task_id or "")}) for a in agents]
    return SessionDetail(
        session=session_out(stored),
        position=loomkin.last_position,
        working=0,
        agents=agents,
        teams=[_team_out(t) for t in loomkin.stored_teams(session_id)],
        tasks=[_task_out(t) for t in loomkin.tasks(session_id)],
        dependencies=[_dep_out(d) for d in loomkin.stored_dependencies(session_id)],
        budgets=[
            BudgetOut(
                scope="session",
                team_id=None,
                name="session",
                cost_usd=spend.cost_usd,
                tokens=spend.input_tokens + spend.output_tokens,
                limit_usd=None,
                limit_tokens=None,
            )
        ],
        permissions=[],
    )
