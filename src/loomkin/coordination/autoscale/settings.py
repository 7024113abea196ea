"""The autoscaler's thresholds (``[autoscale]`` in ``loomkin.toml``) and a team's bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.events import TeamScaleSet
from loomkin.errors import UserError

if TYPE_CHECKING:
    from loomkin.ids import SessionId, TeamId

__all__ = ["AutoscaleSettings", "TeamBounds", "check_bounds", "team_scale_event"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoscaleSettings:
    """When a team grows and shrinks (SPEC §3.10)."""

    enabled: bool = False
    """Off by default: a team is then exactly what its lead spawned."""
    scale_up_ratio: float = 1.0
    """Grow when ready tasks ÷ idle agents stays above this ..."""
    window_s: float = 30.0
    """... for this long (hysteresis: a burst that clears by itself spawns nobody)."""
    cooldown_s: float = 60.0
    """At least this long between two spawn decisions of one team."""
    max_agents: int = 8
    """Worker agents a team may grow to (a lead's ``team_scale`` may lower or pin it)."""
    min_agents: int = 1
    """Worker agents a team keeps however idle they are."""
    max_spawn_step: int = 16
    """Agents one decision may add."""
    retire_after_s: float = 300.0
    """An idle worker agent is retired after this long with no work waiting."""
    warm_spares: int = 0
    """Idle agents kept however long they idle while the team has tasks still to become
    ready (a task on the critical path then starts at once, not after an onboarding)."""
    anticipate: bool = True
    """Count as work waiting the tasks whose every unmet blocker is in progress (they become
    ready soon): agents spawned for them onboard while their blockers finish."""
    default_role: str = "coder"
    """The role spawned for tasks that name none."""
    agent_cost_usd: float = 0.25
    """Projected cost of a new agent before the session has history of its own."""
    session_budget_usd: float | None = None
    """The session's cost budget (``[budgets] session_usd``); a spawn must fit in it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamBounds:
    """A team's size bounds: the settings', narrowed by a lead's ``team_scale``."""

    min_agents: int
    max_agents: int
    pinned: int | None = None

    @property
    def floor(self) -> int:
        return self.pinned if self.pinned is not None else self.min_agents

    @property
    def ceiling(self) -> int:
        return self.pinned if self.pinned is not None else self.max_agents

    def describe(self) -> str:
        """Readable bounds for reasons and tool results."""
        if self.pinned is not None:
            return f"pinned at {self.pinned}"
        return f"between {self.min_agents} and {self.max_agents}"


def check_bounds(
    *, min_agents: int | None, max_agents: int | None, pinned: int | None, limit: int
) -> None:
    """Refuse bounds that make no sense, naming the problem.

    Args:
        min_agents: The smallest size asked for.
        max_agents: The largest size asked for.
        pinned: An exact size asked for (excludes the other two).
        limit: The session's hard limit of agents per team.

    Raises:
        UserError: a negative value, min above max, a pin with bounds, or above ``limit``.
    """
    if pinned is not None and (min_agents is not None or max_agents is not None):
        raise UserError("pin a team's size or bound it with min/max, not both")
    for name, value in (("min", min_agents), ("max", max_agents), ("pin", pinned)):
        if value is None:
            continue
        if value < 0:
            raise UserError(f"{name} must be 0 or more, got {value}")
        if value > limit:
            raise UserError(
                f"{name} {value} is above the limit of {limit} agents per team "
                "(limits.max_agents_per_team in loomkin.toml)"
            )
    if min_agents is not None and max_agents is not None and min_agents > max_agents:
        raise UserError(f"min {min_agents} is above max {max_agents}")
    if max_agents == 0:
        raise UserError("max must be at least 1 (a team with no worker does no work)")


def team_scale_event(
    *,
    session_id: SessionId,
    team_id: TeamId,
    min_agents: int | None = None,
    max_agents: int | None = None,
    pinned: int | None = None,
    clear: bool = False,
    limit: int,
    by: str,
    reason: str = "",
) -> TeamScaleSet:
    """Check a pin or bounds for a team and build the event that sets them.

    ``clear`` drops the team's own bounds (back to the ``[autoscale]`` settings). The tool,
    the facade and the HTTP route all come through here, so they accept and refuse alike.

    Raises:
        UserError: see :func:`check_bounds`; or nothing asked at all.
    """
    if clear:
        if pinned is not None or min_agents is not None or max_agents is not None:
            raise UserError("clear drops a team's bounds; do not give min, max or pin with it")
        return TeamScaleSet(session_id=session_id, team_id=team_id, by=by, reason=reason)
    if pinned is None and min_agents is None and max_agents is None:
        raise UserError("say what to set: min, max or pin (or clear)")
    check_bounds(min_agents=min_agents, max_agents=max_agents, pinned=pinned, limit=limit)
    return TeamScaleSet(
        session_id=session_id,
        team_id=team_id,
        min_agents=min_agents,
        max_agents=max_agents,
        pinned=pinned,
        by=by,
        reason=reason,
    )
