"""Capacity rebalancing across sibling teams (SPEC §3.10), pure: which ready tasks move where.

When a team's backlog has stayed above what its idle agents can take for the hysteresis
window, and a sibling team (same parent, and the comms policy lets the two talk) has idle
workers and no backlog of its own, ready unowned tasks move to that sibling, whose scheduler
hands them to its idle agents at once. Moving work to idle agents is cheaper than spawning new
ones (no onboarding), so the autoscaler rebalances before it grows a team. Tasks whose role
one of the sibling's idle agents has (or that name no role) are moved first, most urgent
first; a task already queued on an agent is never moved (it has an owner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.taskview import TaskView
from loomkin.ids import TeamId

if TYPE_CHECKING:
    from collections.abc import Sequence


__all__ = ["Move", "TeamSide", "plan_moves"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamSide:
    """A team as the rebalancer sees it."""

    team_id: TeamId
    name: str
    ready: tuple[TaskView, ...]
    """Unowned ready tasks, most urgent first."""
    idle_roles: tuple[str, ...]
    """Roles of its idle worker agents (onboarding ones excluded)."""
    backlog_held_s: float | None = None
    """How long its backlog has exceeded its idle capacity (``None``: it does not)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """One ready task to move, with the reason."""

    task: TaskView
    to_team: TeamId
    reason: str


def plan_moves(
    busy: TeamSide,
    siblings: Sequence[TeamSide],
    *,
    window_s: float,
) -> list[Move]:
    """The moves from ``busy`` to its idle siblings (already filtered by the comms policy)."""
    if busy.backlog_held_s is None or busy.backlog_held_s < window_s:
        return []
    surplus = len(busy.ready) - len(busy.idle_roles)
    if surplus <= 0:
        return []
    movable = list(busy.ready[len(busy.idle_roles) :])  # the most urgent stay for its own
    moves: list[Move] = []
    for sibling in siblings:
        if sibling.ready or not sibling.idle_roles:
            continue
        roles = set(sibling.idle_roles)
        fits = sorted(movable, key=lambda t: not (not t.role or t.role in roles))
        for task in fits[: len(sibling.idle_roles)]:
            movable.remove(task)
            moves.append(
                Move(
                    task=task,
                    to_team=sibling.team_id,
                    reason=(
                        f"team {busy.name!r} has had {len(busy.ready)} ready task(s) for "
                        f"{len(busy.idle_roles)} idle agent(s) for {busy.backlog_held_s:.0f}s; "
                        f"sibling team {sibling.name!r} has {len(sibling.idle_roles)} idle "
                        "agent(s) and nothing waiting"
                    ),
                )
            )
        if len(moves) >= surplus or not movable:
            break
    return moves[:surplus]
