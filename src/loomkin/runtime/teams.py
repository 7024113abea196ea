"""Team lifecycle: creating teams in the tree (with a depth limit) and dissolving subtrees.

The manager writes events through the :class:`EventLog`; it never changes the
:class:`~loomkin.core.state.State` itself. The state must be wired as a log listener
(``log.add_listener(lambda rec: state.apply(rec.event))``), which the log calls before
``append`` returns, so a team is visible in the state as soon as ``create_team`` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import TeamCreated, TeamDissolved
from loomkin.errors import InvalidTransition, PolicyRefused, UserError
from loomkin.ids import AgentId, SessionId, TeamId, new_id

if TYPE_CHECKING:
    from loomkin.core.state import State, TeamView
    from loomkin.runtime.eventlog import EventLog

__all__ = ["TeamManager"]


class TeamManager:
    """Creates and dissolves teams; reads delegate to the :class:`State` projection.

    Args:
        log: The event log the team events are appended to.
        state: The projection, kept current by a log listener.
        max_depth: Deepest allowed team (root teams have depth 0).
    """

    def __init__(self, log: EventLog, state: State, *, max_depth: int = 3) -> None:
        if max_depth < 0:
            raise UserError(f"max_depth must be 0 or more, got {max_depth}")
        self._log = log
        self._state = state
        self._max_depth = max_depth

    @property
    def max_depth(self) -> int:
        """Deepest allowed team depth."""
        return self._max_depth

    async def create_team(
        self,
        session_id: str,
        name: str,
        *,
        parent_team_id: str | None = None,
        spawned_by: str | None = None,
        purpose: str = "",
        team_id: str | None = None,
    ) -> TeamId:
        """Create a team and return its id (see :meth:`team_created` for the checks)."""
        created = self.team_created(
            session_id,
            name,
            parent_team_id=parent_team_id,
            spawned_by=spawned_by,
            purpose=purpose,
            team_id=team_id,
        )
        await self._log.append(created)
        return created.team_id

    def team_created(
        self,
        session_id: str,
        name: str,
        *,
        parent_team_id: str | None = None,
        spawned_by: str | None = None,
        purpose: str = "",
        team_id: str | None = None,
    ) -> TeamCreated:
        """Check a new team and return its event, to append alone or with its first agents.

        A team without a parent is a root team (depth 0); a child of T has depth ``depth(T)+1``.
        ``team_id`` may be given for a session's root team, whose id ``SessionStarted`` names.

        Raises:
            NotFound: the parent team does not exist.
            InvalidTransition: the parent team is dissolved.
            UserError: the parent team belongs to another session, or ``name`` is empty.
            PolicyRefused: the new team would be deeper than ``max_depth``.
        """
        if not name.strip():
            raise UserError("a team needs a non-empty name")
        depth = 0 if parent_team_id is None else self._child_depth(session_id, name, parent_team_id)
        return TeamCreated(
            session_id=SessionId(session_id),
            team_id=TeamId(team_id if team_id is not None else new_id("team_")),
            name=name,
            parent_team_id=TeamId(parent_team_id) if parent_team_id is not None else None,
            depth=depth,
            spawned_by=AgentId(spawned_by) if spawned_by is not None else None,
            purpose=purpose,
        )

    def _child_depth(self, session_id: str, name: str, parent_team_id: str) -> int:
        parent = self._state.team(parent_team_id)
        if parent.status != "active":
            raise InvalidTransition(
                f"cannot create team {name!r} under team {parent_team_id!r}: "
                "the parent team is dissolved"
            )
        if parent.session_id != session_id:
            raise UserError(
                f"team {parent_team_id!r} belongs to session {parent.session_id!r}, "
                f"not {session_id!r}"
            )
        depth = parent.depth + 1
        if depth > self._max_depth:
            raise PolicyRefused(
                f"cannot create team {name!r} under team {parent_team_id!r}: it would have "
                f"depth {depth}, beyond the team depth limit of {self._max_depth}"
            )
        return depth

    async def dissolve(self, team_id: str, *, reason: str, by: str | None = None) -> list[TeamId]:
        """Dissolve the team and its live sub-teams, children first, in one atomic batch.

        Returns:
            The dissolved team ids, in the order they were dissolved.

        Raises:
            NotFound: the team does not exist.
            InvalidTransition: the team is already dissolved.
        """
        events = self.dissolution(team_id, reason=reason, by=by)
        await self._log.append(*events)
        return [e.team_id for e in events]

    def dissolution(
        self, team_id: str, *, reason: str, by: str | None = None
    ) -> list[TeamDissolved]:
        """Check a dissolution and return its events (children first), to append with more.

        Raises:
            NotFound: the team does not exist.
            InvalidTransition: the team is already dissolved.
        """
        team = self._state.team(team_id)
        if team.status != "active":
            raise InvalidTransition(f"team {team_id!r} is already dissolved")
        dissolved_by = AgentId(by) if by is not None else None
        return [
            TeamDissolved(
                session_id=t.session_id,
                team_id=t.team_id,
                reason=reason,
                dissolved_by=dissolved_by,
            )
            for t in self._state.subtree(team_id)
        ]

    # -- lookups (delegate to the projection) --------------------------------------------------

    def team(self, team_id: str) -> TeamView:
        """Return the team; raises :class:`~loomkin.errors.NotFound` if unknown."""
        return self._state.team(team_id)

    def parent(self, team_id: str) -> TeamView | None:
        """Return the parent team, or ``None`` for a root team."""
        return self._state.parent(team_id)

    def children(self, team_id: str) -> list[TeamView]:
        """Return the live child teams."""
        return self._state.children(team_id)

    def siblings(self, team_id: str) -> list[TeamView]:
        """Return the other live children of the team's parent."""
        return self._state.siblings(team_id)

    def depth(self, team_id: str) -> int:
        """Return the team's depth (0 for a root team)."""
        return self._state.depth(team_id)

    def subtree(self, team_id: str) -> list[TeamView]:
        """Return the team and its live descendants, children before parents."""
        return self._state.subtree(team_id)
