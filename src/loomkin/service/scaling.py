"""Adaptive teams at the facade: a team's scaling state as a record, and setting its bounds.

:class:`TeamScaleInfo` is what ``loomkin team scale``, ``GET/POST .../teams/{team}/scale`` and
:meth:`~loomkin.service.Session.scale_team` show: the team's workers, its backlog, the ratio
the autoscaler watches, its bounds and what it did so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.coordination.autoscale import ratio_of, team_scale_event

if TYPE_CHECKING:
    from loomkin.agents.session import SessionRuntime
    from loomkin.ids import TeamId
    from loomkin.runtime.eventlog import EventLog

__all__ = ["TeamScaleInfo", "scale_info", "set_team_scale"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamScaleInfo:
    """A team's size and load as the autoscaler sees them."""

    team_id: str
    team_name: str
    enabled: bool
    """Whether the autoscaler runs in this session (``[autoscale] enabled``)."""
    workers: int
    idle: int
    onboarding: int
    ready: int
    """Tasks that could be worked now (unowned and ready, or queued on a busy agent)."""
    ratio: float | None
    """``ready ÷ idle`` (onboarding agents count as idle); ``None`` when unbounded."""
    threshold: float
    min_agents: int
    max_agents: int
    pinned: int | None
    window_s: float
    cooldown_s: float
    retire_after_s: float
    spawns: int
    retires: int
    hold: str
    """Why the last wanted spawn was refused ("" when none is)."""


def scale_info(runtime: SessionRuntime, team_id: TeamId) -> TeamScaleInfo:
    """Read ``team_id``'s scaling state off the autoscaler's projection."""
    scaler = runtime.autoscaler
    settings = scaler.settings
    load = scaler.load(team_id)
    scale = scaler.team(team_id)
    idle = len(load.idle) + load.onboarding
    return TeamScaleInfo(
        team_id=team_id,
        team_name=runtime.ctx.state.team(team_id).name,
        enabled=settings.enabled,
        workers=load.size,
        idle=len(load.idle),
        onboarding=load.onboarding,
        ready=len(load.ready_roles),
        ratio=ratio_of(len(load.ready_roles), idle),
        threshold=settings.scale_up_ratio,
        min_agents=scale.bounds.min_agents,
        max_agents=scale.bounds.max_agents,
        pinned=scale.bounds.pinned,
        window_s=settings.window_s,
        cooldown_s=settings.cooldown_s,
        retire_after_s=settings.retire_after_s,
        spawns=scale.spawns,
        retires=scale.retires,
        hold=scale.hold,
    )


async def set_team_scale(
    runtime: SessionRuntime,
    log: EventLog,
    team_id: TeamId,
    *,
    min_agents: int | None,
    max_agents: int | None,
    pinned: int | None,
    clear: bool,
    by: str,
    reason: str,
) -> TeamScaleInfo:
    """Check and journal a team's bounds (``UserError`` names a bad value); the new state."""
    event = team_scale_event(
        session_id=runtime.session_id,
        team_id=team_id,
        min_agents=min_agents,
        max_agents=max_agents,
        pinned=pinned,
        clear=clear,
        limit=runtime.settings.max_agents_per_team,
        by=by,
        reason=reason,
    )
    await log.append(event)
    return scale_info(runtime, team_id)
