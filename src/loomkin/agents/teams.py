"""Team operations of a session: spawning agents and teams, dissolving teams.

Spawning checks everything that can fail (a unique name in the team, the team's size limit,
a role whose tools all exist) before anything is appended, so the log never holds an agent
that could not be built. A new team and its agents are one atomic append: a crash can never
leave a team without the agents it was created for; a dissolution and the end of its agents
are one append too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents.factory import checked_role
from loomkin.core.events import AgentSpawned, AgentStatusChanged, Event
from loomkin.errors import PolicyRefused
from loomkin.ids import AgentId, TeamId, new_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.agents.directory import AgentDirectory
    from loomkin.agents.factory import ModelFactory, ToolsetFactory
    from loomkin.agents.settings import SessionSettings
    from loomkin.coordination import Member
    from loomkin.core.state import State
    from loomkin.ids import SessionId
    from loomkin.runtime.eventlog import EventLog
    from loomkin.runtime.teams import TeamManager

__all__ = ["TeamOps"]


class TeamOps:
    """Spawns and dissolves the teams and agents of one session (the ``TeamPort``)."""

    def __init__(
        self,
        *,
        session_id: SessionId,
        log: EventLog,
        state: State,
        teams: TeamManager,
        directory: AgentDirectory,
        settings: SessionSettings,
        models: ModelFactory,
        toolsets: ToolsetFactory,
    ) -> None:
        self._session_id = session_id
        self._log = log
        self._state = state
        self._teams = teams
        self._directory = directory
        self._settings = settings
        self._models = models
        self._toolsets = toolsets

    async def spawn_agent(
        self, team_id: TeamId, name: str, role: str, *, spawned_by: str | None = None
    ) -> Member:
        """Add an agent with ``role`` to ``team_id``; the name must be unique in the team."""
        event = self._spawned(team_id, name, role, spawned_by, already=0, names=())
        await self._log.append(event)
        return self._member(event.agent_id)

    def spawn_events(
        self, team_id: TeamId, agents: Sequence[tuple[str, str]], *, spawned_by: str | None = None
    ) -> list[AgentSpawned]:
        """Check new agents ``(name, role)`` for ``team_id``; their events, to append with more."""
        spawned: list[AgentSpawned] = []
        for i, (name, role) in enumerate(agents):
            spawned.append(
                self._spawned(
                    team_id, name, role, spawned_by, already=i, names=[s.name for s in spawned]
                )
            )
        return spawned

    async def spawn_team(
        self,
        *,
        name: str,
        parent_team_id: TeamId,
        purpose: str,
        roles: Sequence[tuple[str, str]],
        spawned_by: str | None,
    ) -> tuple[TeamId, list[Member]]:
        """Create a team under ``parent_team_id`` with agents ``(name, role)``, atomically."""
        created = self._teams.team_created(
            self._session_id,
            name,
            parent_team_id=parent_team_id,
            spawned_by=spawned_by,
            purpose=purpose,
        )
        events: list[Event] = [created]
        spawned: list[AgentSpawned] = []
        for i, (agent_name, role) in enumerate(roles):
            event = self._spawned(
                created.team_id,
                agent_name,
                role,
                spawned_by,
                already=i,
                names=[s.name for s in spawned],
                team_name=name,
            )
            spawned.append(event)
            events.append(event)
        await self._log.append(*events)
        return created.team_id, [self._member(s.agent_id) for s in spawned]

    def retire_events(self, agent_id: AgentId, reason: str) -> list[AgentStatusChanged]:
        """The event that ends ``agent_id`` (status ``done``): the autoscaler retires it."""
        agent = self._directory.get(agent_id)
        if agent is None:
            return []
        return agent.status_change("done", f"retired: {reason}")

    async def dissolve(self, team_id: TeamId, *, reason: str, by: str | None) -> None:
        """Dissolve ``team_id`` and its sub-teams; their agents stop taking work."""
        dissolved = self._teams.dissolution(team_id, reason=reason, by=by)
        doomed = {e.team_id for e in dissolved}
        done = [
            change
            for agent in self._directory.agents()
            if agent.team_id in doomed
            for change in agent.status_change("done", f"team dissolved: {reason}")
        ]
        # One batch: a crash never leaves a dissolved team with agents still taking work.
        await self._log.append(*dissolved, *done)

    def _spawned(
        self,
        team_id: TeamId,
        name: str,
        role: str,
        spawned_by: str | None,
        *,
        already: int,
        names: Sequence[str],
        team_name: str | None = None,
    ) -> AgentSpawned:
        """Check one new agent (``already``: agents of the same batch before it)."""
        team = repr(team_name if team_name is not None else self._state.team(team_id).name)
        if name in names or self._directory.find(team_id, name) is not None:
            raise PolicyRefused(f"team {team} already has an agent named {name!r}")
        limit = self._settings.max_agents_per_team
        if self._directory.team_size(team_id) + already >= limit:
            raise PolicyRefused(
                f"team {team} is full ({limit} agents; raise limits.max_agents_per_team in "
                "loomkin.toml)"
            )
        resolved = checked_role(role, self._settings.custom_roles, self._toolsets)
        return AgentSpawned(
            session_id=self._session_id,
            agent_id=AgentId(new_id("agent_")),
            team_id=team_id,
            name=name,
            role=resolved.name,
            model=self._models(resolved, name).name,
            spawned_by=AgentId(spawned_by) if spawned_by is not None else None,
        )

    def _member(self, agent_id: AgentId) -> Member:
        member = self._directory.member(agent_id)
        assert member is not None, f"agent {agent_id!r} was spawned but not built"
        return member
