"""Work stealing (SPEC §3.10): which queued tasks an idle agent may take, and from whom.

How this works and why:

* A task is **queued** when it was given to an agent (``assigned``, so not started) that is
  busy with another task it has started, and every blocking dependency of it is met: it could
  be worked now, but its owner will not get to it until its current task ends (an agent works
  one task at a time and puts later assignments aside).
* An idle agent may **claim** such a task (the scheduler steals only for an agent of the role
  the task names, when it names one): :meth:`~loomkin.tasks.TaskService.claim` is a
  compare-and-set on the board (the owner must still be the one seen, and the task still not
  started), so of two claimers one wins and a started task is never taken. The scheduler
  (:func:`plan_steals`) and the agents' ``task_claim`` tool use the same claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.scheduling import plan_assignments
from loomkin.core.tasks import TaskView
from loomkin.ids import AgentId

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.scheduling import AgentCandidate, CapabilityStats
    from loomkin.core.tasks import TaskBoard
    from loomkin.ids import TeamId

__all__ = ["STARTED", "Steal", "busy_owners", "plan_steals", "queued_tasks"]

STARTED: frozenset[str] = frozenset({"in_progress", "paused", "blocked", "partially_complete"})
"""Statuses of a task its owner has started (and is therefore busy with)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Steal:
    """One planned claim: ``task`` goes from ``from_owner`` to the idle agent."""

    task: TaskView
    from_owner: AgentId
    agent_id: AgentId
    agent_name: str
    reason: str


def busy_owners(board: TaskBoard, team_id: TeamId | None = None) -> dict[AgentId, TaskView]:
    """Agents holding a started task → that task (the first one, in creation order)."""
    busy: dict[AgentId, TaskView] = {}
    for view in board.tasks(team_id):
        if view.owner is not None and view.status in STARTED:
            busy.setdefault(view.owner.agent_id, view)
    return busy


def queued_tasks(board: TaskBoard, team_id: TeamId | None = None) -> list[TaskView]:
    """Ready tasks assigned to an agent busy with another, most urgent first."""
    busy = busy_owners(board)
    queued = [
        view
        for view in board.tasks(team_id)
        if view.status == "assigned"
        and view.owner is not None
        and view.owner.agent_id in busy
        and board.is_ready(view.task_id)
    ]
    return sorted(queued, key=lambda v: (v.effective_priority, v.created_order))


def plan_steals(
    board: TaskBoard,
    team_id: TeamId,
    idle: Sequence[AgentCandidate],
    stats: CapabilityStats,
    load: Mapping[AgentId, int],
) -> list[Steal]:
    """Pair idle agents with queued tasks of their team (the scheduler's policy, reused)."""
    queued = queued_tasks(board, team_id)
    if not queued or not idle:
        return []
    busy = busy_owners(board)
    by_id = {v.task_id: v for v in queued}
    steals = []
    roles = {c.agent_id: c.role for c in idle}
    for choice in plan_assignments(queued, idle, stats, load):
        view = by_id[choice.task_id]
        assert view.owner is not None
        if view.role and view.role != roles[choice.agent_id]:
            continue  # a task meant for a role goes only to an agent of that role
        current = busy[view.owner.agent_id]
        reason = (
            f"stolen from {view.owner.name}, who is busy with {current.title!r}; {choice.reason}"
        )
        steals.append(
            Steal(
                task=view,
                from_owner=view.owner.agent_id,
                agent_id=choice.agent_id,
                agent_name=choice.agent_name,
                reason=reason,
            )
        )
    return steals
