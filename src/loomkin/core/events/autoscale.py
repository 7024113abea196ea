"""Adaptive-team facts (SPEC §3.10): scaling decisions, a lead's bounds, capacity moves.

Every decision the autoscaler takes is one :class:`ScaleDecided` with its reason and the
figures behind it (ready tasks, idle agents, the ratio, the thresholds, the budget), appended in
the same batch as what it causes (the new agents and their onboarding briefs, or the retired
agents' last status and the knowledge they leave behind). Work stealing is the task event
``TaskClaimed`` (:mod:`loomkin.core.events.tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import Event, register
from loomkin.ids import AgentId, TaskId, TeamId

__all__ = ["CapacityMoved", "ScaleAction", "ScaleDecided", "TeamScaleSet"]

ScaleAction = Literal["spawn", "retire", "hold"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleDecided(Event):
    """The autoscaler grew, shrank, or declined to grow a team, and why.

    ``hold`` records a wanted spawn that a bound refused (the team's maximum, its pin, or the
    budget); it is appended once per change of that refusal, not at every check.
    """

    kind: Literal["scale_decided"] = "scale_decided"
    team_id: TeamId
    action: ScaleAction
    reason: str
    """Readable: what was seen and which rule acted."""
    agents: tuple[str, ...] = ()
    """Names of the agents spawned or retired."""
    agent_ids: tuple[AgentId, ...] = ()
    role: str = ""
    """The role spawned (the one the backlog needs), or the retired agents' role."""
    ready: int = 0
    """Tasks that could be worked now (unowned and ready, or queued on a busy agent)."""
    idle: int = 0
    """Idle worker agents, agents still onboarding included."""
    size: int = 0
    """Worker agents of the team before the decision."""
    ratio: float | None = None
    """``ready ÷ idle``; ``None`` when no agent is idle and work is waiting (unbounded)."""
    threshold: float = 0.0
    """The ratio above which the team grows."""
    max_size: int = 0
    projected_usd: float = 0.0
    """What the new agents are expected to cost (spawn decisions)."""
    budget_left_usd: float | None = None
    """Session budget still unspent, when the session has a cost budget."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TeamScaleSet(Event):
    """A lead (or the user) pinned or bounded a team's size for the autoscaler."""

    kind: Literal["team_scale_set"] = "team_scale_set"
    team_id: TeamId
    min_agents: int | None = None
    max_agents: int | None = None
    pinned: int | None = None
    """Exactly this many worker agents (the autoscaler spawns and retires to match)."""
    by: str = "user"
    reason: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityMoved(Event):
    """A ready task moved to a sibling team whose agents sit idle (capacity rebalancing).

    The task board applies it: the task belongs to ``to_team`` from then on, so that team's
    scheduler hands it out.
    """

    kind: Literal["capacity_moved"] = "capacity_moved"
    task_id: TaskId
    from_team: TeamId
    to_team: TeamId
    reason: str = ""
