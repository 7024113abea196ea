"""The autoscaler's memory, a projection of the log: idle times, onboarding, bounds, spawns.

Replay and live alike: when each agent last became idle, which agents the autoscaler spawned
are still reading their brief, the bounds a lead set with ``team_scale`` (``TeamScaleSet``),
each team's last spawn, what it spawned, retired and held, and the Orienter's brief (for the
onboarding of new agents). Live events that can change a team's load wake the autoscaler.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loomkin.coordination.autoscale.settings import AutoscaleSettings, TeamBounds
from loomkin.coordination.base import COORDINATION_ROLES
from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    CapacityMoved,
    MessageSent,
    MilestoneEmitted,
    PartialResultPublished,
    ScaleDecided,
    TaskAssigned,
    TaskClaimed,
    TaskCreated,
    TaskStatusChanged,
    TeamScaleSet,
)

if TYPE_CHECKING:
    from loomkin.coordination.base import Context
    from loomkin.core.events import RecordedEvent
    from loomkin.ids import AgentId, TeamId

__all__ = ["ScaleMemory", "TeamScale"]

_WAKE = (
    TaskCreated,
    TaskStatusChanged,
    TaskAssigned,
    TaskClaimed,
    AgentStatusChanged,
    AgentSpawned,
    TeamScaleSet,
    MilestoneEmitted,
    PartialResultPublished,
    CapacityMoved,
)


class TeamScale:
    """A team's scaling state, as the status tools and the facade report it."""

    __slots__ = ("above_since", "bounds", "hold", "last_spawn", "retires", "spawns")

    def __init__(self, bounds: TeamBounds) -> None:
        self.bounds = bounds
        self.above_since: float | None = None
        self.last_spawn: float | None = None
        self.hold = ""
        self.spawns = 0
        self.retires = 0


class ScaleMemory:
    """What the autoscaler remembers, folded from the log (see the module docstring)."""

    def __init__(self, ctx: Context, settings: AutoscaleSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.teams: dict[TeamId, TeamScale] = {}
        self.idle_since: dict[AgentId, float] = {}
        self.onboarding: dict[AgentId, bool] = {}
        """Agent → whether it has started reading its brief (it is ready once idle again)."""
        self.orienter_brief = ""
        self.worker_count = 0
        self._wakeup = asyncio.Event()

    # -- projection -----------------------------------------------------------------------------

    def team(self, team_id: TeamId) -> TeamScale:
        """The scaling state of ``team_id`` (created with the settings' bounds)."""
        scale = self.teams.get(team_id)
        if scale is None:
            bounds = TeamBounds(
                min_agents=self.settings.min_agents, max_agents=self.settings.max_agents
            )
            scale = self.teams[team_id] = TeamScale(bounds)
        return scale

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Fold one event; when live, wake the loop if a team's load may have changed."""
        event = recorded.event
        if event.session_id != self.ctx.session_id:
            return
        at = recorded.recorded_at
        match event:
            case AgentSpawned(agent_id=aid, role=role):
                self.idle_since[aid] = at
                if role not in COORDINATION_ROLES:
                    self.worker_count += 1
            case AgentStatusChanged(agent_id=aid, status=status):
                self._on_status(aid, status, at)
            case ScaleDecided(action="spawn", team_id=team, agent_ids=ids):
                self.team(team).last_spawn = at
                self.team(team).spawns += len(ids)
                self.team(team).hold = ""
                self.onboarding.update(dict.fromkeys(ids, False))
            case ScaleDecided(action="retire", team_id=team, agent_ids=ids):
                self.team(team).retires += len(ids)
            case ScaleDecided(action="hold", team_id=team, reason=reason):
                self.team(team).hold = reason
            case TeamScaleSet():
                self._on_bounds(event)
            case MessageSent(from_agent=sender, content=text) if sender is not None:
                member = self.ctx.member(sender)
                if member is not None and member.role == "orienter":
                    self.orienter_brief = text
            case _:
                pass
        if live and isinstance(event, _WAKE):
            self._wakeup.set()

    def _on_status(self, agent_id: AgentId, status: str, at: float) -> None:
        if status == "idle":
            self.idle_since[agent_id] = at
        if agent_id in self.onboarding:
            if (status == "idle" and self.onboarding[agent_id]) or status == "done":
                del self.onboarding[agent_id]
            elif status != "idle":
                self.onboarding[agent_id] = True

    def _on_bounds(self, event: TeamScaleSet) -> None:
        scale = self.team(event.team_id)
        if event.pinned is None and event.min_agents is None and event.max_agents is None:
            scale.bounds = TeamBounds(
                min_agents=self.settings.min_agents, max_agents=self.settings.max_agents
            )
            return
        scale.bounds = TeamBounds(
            min_agents=event.min_agents if event.min_agents is not None else 0,
            max_agents=(
                event.max_agents if event.max_agents is not None else self.settings.max_agents
            ),
            pinned=event.pinned,
        )
