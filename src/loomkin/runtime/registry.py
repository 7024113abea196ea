"""Where live agents are found: by id, or by name within a team."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

from loomkin.errors import NotFound, UserError

if TYPE_CHECKING:
    from loomkin.ids import AgentId, TeamId

__all__ = ["Registry"]

H = TypeVar("H")


class Registry(Generic[H]):
    """Live agent handles, indexed by agent id and by ``(team, name)``.

    Names are unique within a team; ``in_team`` lists handles in registration order.
    """

    __slots__ = ("_by_id", "_teams")

    def __init__(self) -> None:
        self._by_id: dict[AgentId, tuple[TeamId, str, H]] = {}
        self._teams: dict[TeamId, dict[str, AgentId]] = {}

    def register(self, agent_id: AgentId, team_id: TeamId, name: str, handle: H) -> None:
        """Register ``handle`` as agent ``agent_id`` named ``name`` in team ``team_id``.

        Raises:
            UserError: the id is already registered, or the name is taken in that team.
        """
        if agent_id in self._by_id:
            raise UserError(f"agent {agent_id!r} is already registered")
        names = self._teams.setdefault(team_id, {})
        if name in names:
            raise UserError(
                f"agent name {name!r} is already taken in team {team_id!r} "
                f"(by agent {names[name]!r})"
            )
        names[name] = agent_id
        self._by_id[agent_id] = (team_id, name, handle)

    def unregister(self, agent_id: AgentId) -> H:
        """Remove agent ``agent_id`` and return its handle.

        Raises:
            NotFound: no agent with that id is registered.
        """
        try:
            team_id, name, handle = self._by_id.pop(agent_id)
        except KeyError:
            raise NotFound(f"agent {agent_id!r} not found") from None
        names = self._teams[team_id]
        del names[name]
        if not names:
            del self._teams[team_id]
        return handle

    def by_id(self, agent_id: AgentId) -> H:
        """Return the handle of agent ``agent_id``; raises :class:`NotFound` if none."""
        try:
            return self._by_id[agent_id][2]
        except KeyError:
            raise NotFound(f"agent {agent_id!r} not found") from None

    def get_by_id(self, agent_id: AgentId) -> H | None:
        """Return the handle of agent ``agent_id``, or ``None``."""
        entry = self._by_id.get(agent_id)
        return None if entry is None else entry[2]

    def by_name(self, team_id: TeamId, name: str) -> H:
        """Return the handle of the agent named ``name`` in team ``team_id``.

        Raises:
            NotFound: no such agent in that team.
        """
        handle = self.get_by_name(team_id, name)
        if handle is None:
            raise NotFound(f"agent {name!r} not found in team {team_id!r}")
        return handle

    def get_by_name(self, team_id: TeamId, name: str) -> H | None:
        """Return the handle of the agent named ``name`` in team ``team_id``, or ``None``."""
        agent_id = self._teams.get(team_id, {}).get(name)
        return None if agent_id is None else self._by_id[agent_id][2]

    def team_of(self, agent_id: AgentId) -> TeamId:
        """Return the team of agent ``agent_id``; raises :class:`NotFound` if none."""
        try:
            return self._by_id[agent_id][0]
        except KeyError:
            raise NotFound(f"agent {agent_id!r} not found") from None

    def in_team(self, team_id: TeamId) -> list[H]:
        """Return the handles of the agents of team ``team_id``, in registration order."""
        return [self._by_id[a][2] for a in self._teams.get(team_id, {}).values()]

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)
