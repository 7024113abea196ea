"""The projection of sessions, teams and agents, rebuilt by replaying events.

Pure and synchronous: :meth:`State.apply` folds one event into the views; replaying a log from
the start gives the same state as applying its events as they were appended. Events of kinds
this projection does not use are ignored, and so are events about an unknown agent (they are
counted in :attr:`State.unknown_refs`, since a valid log never produces them).

The views are plain mutable slotted dataclasses owned by the :class:`State`: ``apply`` updates
them in place, which keeps replay cheap. Callers read them and must not modify them; take
``dataclasses.replace(view)`` for a detached copy.

Dissolved teams stay in the projection (``status == "dissolved"``) so history remains
readable, but the tree queries (:meth:`State.children`, :meth:`State.siblings`,
:meth:`State.subtree`) list live teams only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from loomkin.core.events import (
    AgentFailedPermanently,
    AgentPlaced,
    AgentSpawned,
    AgentStatusChanged,
    Event,
    ModelCallCompleted,
    SessionBootstrapped,
    SessionEnded,
    SessionStarted,
    TaskAssigned,
    TaskStatusChanged,
    TeamCreated,
    TeamDissolved,
)
from loomkin.core.records import AgentStatus, TaskStatus
from loomkin.errors import NotFound
from loomkin.ids import AgentId, SessionId, TaskId, TeamId

__all__ = ["AgentView", "SessionView", "State", "TeamView"]

_TASK_DONE: frozenset[TaskStatus] = frozenset(
    {"completed", "failed", "cancelled", "discarded_tentative", "completed_tentative"}
)


@dataclass(slots=True, kw_only=True)
class SessionView:
    """One session as the log describes it."""

    session_id: SessionId
    project_root: str
    root_team_id: TeamId
    title: str = ""
    model: str = ""
    status: Literal["active", "ended"] = "active"
    bootstrapped: bool = False
    """Whether the Concierge and the Orienter were spawned."""
    concierge_id: AgentId | None = None
    orienter_id: AgentId | None = None
    end_reason: str = ""


@dataclass(slots=True, kw_only=True)
class TeamView:
    """One team: its place in the tree and its agents."""

    team_id: TeamId
    session_id: SessionId
    name: str
    parent_team_id: TeamId | None = None
    depth: int = 0
    """0 for a root team; a child of T has ``depth(T) + 1``."""
    spawned_by: AgentId | None = None
    purpose: str = ""
    status: Literal["active", "dissolved"] = "active"
    dissolve_reason: str = ""
    dissolved_by: AgentId | None = None
    child_ids: list[TeamId] = field(default_factory=list)
    """Every child ever created, in creation order (dissolved ones included)."""
    agent_ids: list[AgentId] = field(default_factory=list)
    """Agents spawned in the team, in spawn order."""


@dataclass(slots=True, kw_only=True)
class AgentView:
    """One agent: status, current task and accumulated model usage."""

    agent_id: AgentId
    session_id: SessionId
    team_id: TeamId
    name: str
    role: str
    model: str
    spawned_by: AgentId | None = None
    status: AgentStatus = "idle"
    status_reason: str = ""
    failed: bool = False
    """Whether the agent was marked permanently failed by its supervisor."""
    failure: str = ""
    current_task_id: TaskId | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    worker: str | None = None
    """The worker of a cluster its model calls run on (``None``: in the session's process)."""


class State:
    """Sessions, teams and agents, projected from the event log (see the module docstring)."""

    __slots__ = ("_agents", "_sessions", "_task_owner", "_teams", "unknown_refs")

    def __init__(self) -> None:
        self._sessions: dict[SessionId, SessionView] = {}
        self._teams: dict[TeamId, TeamView] = {}
        self._agents: dict[AgentId, AgentView] = {}
        self._task_owner: dict[TaskId, AgentId] = {}
        self.unknown_refs = 0
        """Events that named an agent this projection has never seen."""

    @classmethod
    def replay(cls, events: list[Event]) -> State:
        """Return a new state with ``events`` applied in order."""
        state = cls()
        for event in events:
            state.apply(event)
        return state

    # -- folding -------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:  # noqa: C901  # one flat dispatch over event kinds
        """Fold ``event`` into the views; kinds this projection does not use are ignored."""
        match event:
            case SessionStarted():
                self._session_started(event)
            case SessionBootstrapped():
                session = self._sessions.get(event.session_id)
                if session is not None:
                    session.bootstrapped = True
                    session.concierge_id = event.concierge_id
                    session.orienter_id = event.orienter_id
            case SessionEnded():
                session = self._sessions.get(event.session_id)
                if session is not None:
                    session.status = "ended"
                    session.end_reason = event.reason
            case TeamCreated():
                self._team_created(event)
            case TeamDissolved():
                team = self._teams.get(event.team_id)
                if team is not None:
                    team.status = "dissolved"
                    team.dissolve_reason = event.reason
                    team.dissolved_by = event.dissolved_by
            case AgentSpawned():
                self._agent_spawned(event)
            case AgentStatusChanged():
                if (agent := self._agent_ref(event.agent_id)) is not None:
                    agent.status = event.status
                    agent.status_reason = event.reason
            case AgentFailedPermanently():
                self._agent_failed(event)
            case AgentPlaced():
                if (agent := self._agent_ref(event.agent_id)) is not None:
                    agent.worker = event.worker
            case ModelCallCompleted():
                if (agent := self._agent_ref(event.agent_id)) is not None:
                    agent.input_tokens += event.input_tokens
                    agent.output_tokens += event.output_tokens
                    agent.cost_usd += event.cost_usd
                    agent.model_calls += 1
            case TaskAssigned():
                if (agent := self._agent_ref(event.owner)) is not None:
                    agent.current_task_id = event.task_id
                    self._task_owner[event.task_id] = event.owner
            case TaskStatusChanged():
                self._task_status_changed(event)
            case _:
                pass

    def _session_started(self, event: SessionStarted) -> None:
        self._sessions[event.session_id] = SessionView(
            session_id=event.session_id,
            project_root=event.project_root,
            root_team_id=event.root_team_id,
            title=event.title,
            model=event.model,
        )
        # The root team exists from the session's start; a TeamCreated for it fills it in.
        if event.root_team_id not in self._teams:
            self._teams[event.root_team_id] = TeamView(
                team_id=event.root_team_id, session_id=event.session_id, name="root"
            )

    def _team_created(self, event: TeamCreated) -> None:
        parent = self._teams.get(event.parent_team_id) if event.parent_team_id else None
        depth = parent.depth + 1 if parent is not None else event.depth
        existing = self._teams.get(event.team_id)
        if existing is not None:  # the root team announced by SessionStarted
            existing.name = event.name
            existing.purpose = event.purpose
            existing.spawned_by = event.spawned_by
            return
        self._teams[event.team_id] = TeamView(
            team_id=event.team_id,
            session_id=event.session_id,
            name=event.name,
            parent_team_id=event.parent_team_id,
            depth=depth,
            spawned_by=event.spawned_by,
            purpose=event.purpose,
        )
        if parent is not None:
            parent.child_ids.append(event.team_id)

    def _agent_spawned(self, event: AgentSpawned) -> None:
        if event.agent_id in self._agents:
            return
        self._agents[event.agent_id] = AgentView(
            agent_id=event.agent_id,
            session_id=event.session_id,
            team_id=event.team_id,
            name=event.name,
            role=event.role,
            model=event.model,
            spawned_by=event.spawned_by,
        )
        team = self._teams.get(event.team_id)
        if team is not None:
            team.agent_ids.append(event.agent_id)

    def _agent_failed(self, event: AgentFailedPermanently) -> None:
        agent = self._agent_ref(event.agent_id)
        if agent is None:
            return
        agent.status = "crashed"
        agent.failed = True
        agent.failure = event.error
        released = event.released_task_id
        if released is not None and agent.current_task_id == released:
            agent.current_task_id = None
            self._task_owner.pop(released, None)

    def _task_status_changed(self, event: TaskStatusChanged) -> None:
        if event.status not in _TASK_DONE:
            return
        owner = self._task_owner.pop(event.task_id, None)
        agent = self._agents.get(owner) if owner is not None else None
        if agent is not None and agent.current_task_id == event.task_id:
            agent.current_task_id = None

    def _agent_ref(self, agent_id: AgentId) -> AgentView | None:
        agent = self._agents.get(agent_id)
        if agent is None:
            self.unknown_refs += 1
        return agent

    # -- queries -------------------------------------------------------------------------------

    def session(self, session_id: str) -> SessionView:
        """Return the session; raises :class:`NotFound` if unknown."""
        try:
            return self._sessions[SessionId(session_id)]
        except KeyError:
            raise NotFound(f"session {session_id!r} not found") from None

    def get_session(self, session_id: str) -> SessionView | None:
        """Return the session, or ``None``."""
        return self._sessions.get(SessionId(session_id))

    def team(self, team_id: str) -> TeamView:
        """Return the team (live or dissolved); raises :class:`NotFound` if unknown."""
        try:
            return self._teams[TeamId(team_id)]
        except KeyError:
            raise NotFound(f"team {team_id!r} not found") from None

    def get_team(self, team_id: str) -> TeamView | None:
        """Return the team, or ``None``."""
        return self._teams.get(TeamId(team_id))

    def agent(self, agent_id: str) -> AgentView:
        """Return the agent; raises :class:`NotFound` if unknown."""
        try:
            return self._agents[AgentId(agent_id)]
        except KeyError:
            raise NotFound(f"agent {agent_id!r} not found") from None

    def get_agent(self, agent_id: str) -> AgentView | None:
        """Return the agent, or ``None``."""
        return self._agents.get(AgentId(agent_id))

    def agents_in(self, team_id: str) -> list[AgentView]:
        """Return the agents spawned in the team, in spawn order."""
        return [self._agents[a] for a in self.team(team_id).agent_ids]

    def find_agent(self, team_id: str, name: str) -> AgentView | None:
        """Return the agent named ``name`` in the team, or ``None``."""
        for agent_id in self.team(team_id).agent_ids:
            agent = self._agents[agent_id]
            if agent.name == name:
                return agent
        return None

    def parent(self, team_id: str) -> TeamView | None:
        """Return the parent team, or ``None`` for a root team."""
        parent_id = self.team(team_id).parent_team_id
        return None if parent_id is None else self._teams.get(parent_id)

    def children(self, team_id: str) -> list[TeamView]:
        """Return the live child teams, in creation order."""
        teams = self._teams
        return [t for c in self.team(team_id).child_ids if (t := teams[c]).status == "active"]

    def siblings(self, team_id: str) -> list[TeamView]:
        """Return the other live children of the team's parent (none for a root team)."""
        parent = self.parent(team_id)
        if parent is None:
            return []
        return [t for t in self.children(parent.team_id) if t.team_id != team_id]

    def depth(self, team_id: str) -> int:
        """Return the team's depth (0 for a root team)."""
        return self.team(team_id).depth

    def subtree(self, team_id: str) -> list[TeamView]:
        """Return the team and its live descendants, depth-first, children before parents.

        This is the order to dissolve them in.
        """
        out: list[TeamView] = []

        def visit(team: TeamView) -> None:
            for child in self.children(team.team_id):
                visit(child)
            out.append(team)

        visit(self.team(team_id))
        return out

    def sessions(self) -> list[SessionView]:
        """Return every session, in start order."""
        return list(self._sessions.values())

    def teams(self, session_id: str | None = None) -> list[TeamView]:
        """Return every team (optionally of one session), in creation order."""
        return [t for t in self._teams.values() if session_id in (None, t.session_id)]

    def resolve_team(self, session_id: str, name_or_id: str) -> TeamView:
        """Return the team of ``session_id`` with this id or name (dissolved ones included).

        Raises:
            NotFound: the session has no such team.
        """
        team = self._teams.get(TeamId(name_or_id))
        if team is not None and team.session_id == session_id:
            return team
        for team in self._teams.values():
            if team.session_id == session_id and team.name == name_or_id:
                return team
        raise NotFound(f"no team {name_or_id!r} in session {session_id!r}")

    def agents(self, session_id: str | None = None) -> list[AgentView]:
        """Return every agent (optionally of one session), in spawn order."""
        return [a for a in self._agents.values() if session_id in (None, a.session_id)]
