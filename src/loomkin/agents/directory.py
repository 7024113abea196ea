"""The agent directory of a session: who is here, found by id or name, as agents or records.

The directory is a projection: agents are added to it as they are built from their
``AgentSpawned`` events (:class:`~loomkin.agents.factory.AgentFactory`), and it folds each
agent's own events, and the task events about the task it holds, into that agent's memory.
Tools and coordination services see the agents only as :class:`~loomkin.coordination.Member`
records (the ``Directory`` and ``Roster`` ports); the session's own parts get the agents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from loomkin.coordination import Member
from loomkin.core.events import (
    AgentEvent,
    AgentStatusChanged,
    ScaleDecided,
    TaskAssigned,
    TaskStatusChanged,
)
from loomkin.core.scheduling import AgentCandidate, TaskType
from loomkin.errors import NotFound, UserError
from loomkin.ids import AgentId, TaskId, TeamId

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.agents.agent import Agent
    from loomkin.core.events import RecordedEvent
    from loomkin.core.scheduling import CapabilityStats
    from loomkin.core.state import State
    from loomkin.tasks import TaskService
    from loomkin.tools.base import ToolSpec

__all__ = ["AgentDirectory"]


class AgentDirectory:
    """The agents of one session (see the module docstring)."""

    def __init__(
        self,
        *,
        session_id: str,
        root_team_id: TeamId,
        state: State,
        tasks: TaskService,
        stats: CapabilityStats,
        coordination_roles: frozenset[str],
    ) -> None:
        self._session_id = session_id
        self._root_team_id = root_team_id
        self._state = state
        self._tasks = tasks
        self._stats = stats
        self._coordination_roles = coordination_roles
        self._agents: dict[AgentId, Agent] = {}
        self._by_name: dict[tuple[TeamId, str], Agent] = {}
        self._onboarding: dict[AgentId, bool] = {}
        """Agents spawned by the autoscaler still reading their brief (→ started reading)."""
        self._holding: dict[str, AgentId] = {}
        """Task id → the agent whose memory holds it (to tell it when the task leaves it)."""

    # -- projection -------------------------------------------------------------------------------

    def add(self, agent: Agent) -> None:
        """Register an agent just built from its ``AgentSpawned`` event."""
        self._agents[agent.agent_id] = agent
        self._by_name[(agent.team_id, agent.name)] = agent

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Fold an agent's own events, and task events about its task, into its memory."""
        event = recorded.event
        if isinstance(event, ScaleDecided) and event.action == "spawn":
            self._onboarding.update(dict.fromkeys(event.agent_ids, False))
        if isinstance(event, AgentEvent):
            agent = self._agents.get(event.agent_id)
            if agent is not None:
                self._fold(agent, event)
            if isinstance(event, AgentStatusChanged) and event.agent_id in self._onboarding:
                self._onboarded(event.agent_id, event.status)
        elif isinstance(event, TaskAssigned | TaskStatusChanged):
            self._route_task_event(event)

    def caught_up(self) -> None:
        """Put each agent's control requests without an outcome back on its lane.

        They were acknowledged before the restart and must still be applied (or dropped)
        exactly once; nothing is woken here: which agents resume is the session's decision
        (:meth:`~loomkin.agents.session.SessionRuntime.resume_interrupted`).
        """
        for agent in self._agents.values():
            agent.requeue_controls()

    def _onboarded(self, agent_id: AgentId, status: str) -> None:
        """An onboarding agent is ready once it went to work on its brief and is idle again."""
        if status == "done" or (status == "idle" and self._onboarding[agent_id]):
            del self._onboarding[agent_id]
        elif status != "idle":
            self._onboarding[agent_id] = True

    def onboarding(self, agent_id: AgentId) -> bool:
        """True while an agent the autoscaler spawned has not finished reading its brief."""
        return agent_id in self._onboarding

    def _route_task_event(self, event: TaskAssigned | TaskStatusChanged) -> None:
        owner = (
            event.owner if isinstance(event, TaskAssigned) else self._tasks.owner_of(event.task_id)
        )
        agent = self._agents.get(AgentId(owner)) if owner else None
        if agent is not None:
            self._fold(agent, event)
        holder = self._agents.get(self._holding.get(event.task_id, AgentId("")))
        if holder is not None and holder is not agent:  # a released task leaves its owner too
            self._fold(holder, event)

    def _fold(self, agent: Agent, event: AgentEvent | TaskAssigned | TaskStatusChanged) -> None:
        before = agent.memory.task_id
        agent.memory.apply(event)
        after = agent.memory.task_id
        if before != after:
            if before is not None and self._holding.get(before) == agent.agent_id:
                del self._holding[before]
            if after is not None:
                self._holding[after] = agent.agent_id

    # -- agents (for the session's own parts) ------------------------------------------------

    def agents(self) -> list[Agent]:
        """Every agent, in spawn order."""
        return list(self._agents.values())

    def get(self, agent_id: str) -> Agent | None:
        """The agent ``agent_id``, if it is in this session."""
        return self._agents.get(AgentId(agent_id))

    def find(self, team_id: TeamId, name: str) -> Agent | None:
        """The agent called ``name`` in ``team_id``, if any."""
        return self._by_name.get((team_id, name))

    def team_size(self, team_id: TeamId) -> int:
        """How many agents of ``team_id`` are alive (retired and dissolved ones left out)."""
        return sum(
            1 for a in self._agents.values() if a.team_id == team_id and a.memory.status != "done"
        )

    def agent(self, name: str, team_id: TeamId | None = None) -> Agent:
        """An agent by id, or by name: ``team/name``, or a name in ``team_id`` (else unique).

        Raises:
            NotFound: no such agent (the message lists the agents there are).
            UserError: the name is ambiguous.
        """
        by_id = self._agents.get(AgentId(name))
        if by_id is not None and team_id in (None, by_id.team_id):
            return by_id
        if "/" in name and team_id is None:
            team_part, name = name.split("/", 1)
            team_id = self._state.resolve_team(self._session_id, team_part).team_id
        matches = [
            a for a in self._agents.values() if a.name == name and team_id in (None, a.team_id)
        ]
        if not matches:
            known = ", ".join(sorted({a.name for a in self._agents.values()})) or "none yet"
            raise NotFound(
                f"no agent named {name!r} in session {self._session_id!r}; agents: {known}"
            )
        if len(matches) > 1:
            teams = ", ".join(sorted(self._state.team(a.team_id).name for a in matches))
            raise UserError(f"agent name {name!r} is ambiguous; say team/name (teams: {teams})")
        return matches[0]

    # -- records (the Directory and Roster ports) ------------------------------------------------

    def record(self, agent: Agent) -> Member:
        """``agent`` as a plain record."""
        return Member(
            agent_id=agent.agent_id,
            name=agent.name,
            role=agent.role.name,
            team_id=agent.team_id,
            status=agent.memory.status,
            task_id=agent.memory.task_id,
            capability=self._capability(agent.agent_id),
            cost_usd=agent.memory.cost_usd,
        )

    def member(self, agent_id: str) -> Member | None:
        agent = self.get(agent_id)
        return None if agent is None else self.record(agent)

    member_by_id = member

    def members(self) -> Sequence[Member]:
        return [self.record(a) for a in self._agents.values()]

    def resolve(self, name: str, team_id: TeamId | None = None) -> Member:
        return self.record(self.agent(name, team_id))

    def lead_of(self, team_id: TeamId) -> Member | None:
        for role in ("lead", "concierge"):
            for agent in self._agents.values():
                if agent.role.name == role and agent.team_id == team_id:
                    return self.record(agent)
        concierge = self.find(self._root_team_id, "concierge")
        return None if concierge is None else self.record(concierge)

    def tool_specs(self, agent_id: str) -> Sequence[ToolSpec]:
        """The tools agent ``agent_id`` may call (none for an unknown agent)."""
        agent = self._agents.get(AgentId(agent_id))
        return agent.tools.schemas() if agent is not None else ()

    def candidates(self, team_id: TeamId) -> list[AgentCandidate]:
        return [
            AgentCandidate(
                agent_id=a.agent_id,
                name=a.name,
                role=a.role.name,
                # A task the agent holds but no longer works on (ready for review, say) does
                # not keep it from new work; an agent being onboarded is not free yet.
                idle=a.memory.status == "idle"
                and (a.memory.task_id is None or not self._tasks.is_open(a.memory.task_id))
                and a.agent_id not in self._onboarding,
                status=a.memory.status,
            )
            for a in self._agents.values()
            if a.team_id == team_id and a.role.name not in self._coordination_roles
        ]

    def _capability(self, agent_id: AgentId) -> float:
        wins = total = 0
        for task_type in get_args(TaskType):
            s, f = self._stats.counts(agent_id, task_type)
            wins, total = wins + s, total + s + f
        return wins / total if total else 0.5

    def holder_of(self, task_id: TaskId) -> Agent | None:
        """The agent whose memory holds ``task_id`` as its task in progress."""
        holder = self._holding.get(task_id)
        return None if holder is None else self._agents.get(holder)
