"""Wires the coordination services into a session: roster, listener, pre-write hook, timers.

The services in :mod:`loomkin.coordination` sit below the agent layer and never see an
``Agent``; this adapter gives them :class:`~loomkin.coordination.Member` records, forwards
the log's events to them, runs the conflict detector's check right before a file write, and
starts the rebalancer's periodic check on the session's ``timers``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, get_args

from loomkin.coordination import (
    ConflictDetector,
    Context,
    Knowledge,
    Member,
    Rebalancer,
    VoteBook,
)
from loomkin.coordination.conflicts import WRITE_TOOLS
from loomkin.core.scheduling import TaskType
from loomkin.ids import AgentId

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.agents.agent import Agent
    from loomkin.agents.session import SessionRuntime
    from loomkin.core.events import Event
    from loomkin.core.events.base import JSON

__all__ = ["SessionCoordination"]


class SessionCoordination:
    """The coordination services of one session."""

    def __init__(self, session: SessionRuntime) -> None:
        self.session = session
        self.ctx = Context(
            session_id=session.session_id,
            log=session.log,
            clock=session.clock,
            timers=session.timers,
            tasks=session.tasks,
            state=session.state,
            roster=self,
        )
        self.conflicts = ConflictDetector(self.ctx, Path(session.project_root))
        self.rebalancer = Rebalancer(self.ctx, session.settings.rebalancer)
        self.votes = VoteBook(self.ctx)
        self.knowledge = Knowledge(
            self.ctx,
            lambda agent_id: frozenset(self.conflicts.touched.get(agent_id, ())),
            propagate_depth=session.settings.propagation_depth,
        )
        self._started = False

    def start(self) -> None:
        """Start the rebalancer's periodic check (and re-arm open vote deadlines)."""
        if self._started:
            return
        self._started = True
        self.votes.rearm_open()
        self.session.timers.run(
            f"rebalancer:{self.session.session_id}", self.rebalancer.run_forever
        )

    def members(self) -> Sequence[Member]:
        """Every agent of the session as a plain record."""
        return [self.member(a) for a in self.session.agents.values()]

    def member_by_id(self, agent_id: str) -> Member | None:
        """The agent ``agent_id`` as a plain record, without building every other member."""
        agent = self.session.agents.get(AgentId(agent_id))
        return None if agent is None else self.member(agent)

    def member(self, agent: Agent) -> Member:
        """``agent`` as a plain record."""
        return Member(
            agent_id=agent.agent_id,
            name=agent.name,
            role=agent.role.name,
            team_id=agent.team_id,
            status=agent.memory.status,
            task_id=agent.memory.task_id,
            capability=self._capability(agent),
        )

    def _capability(self, agent: Agent) -> float:
        stats = self.session.scheduler_stats
        wins = total = 0
        for task_type in get_args(TaskType):
            s, f = stats.counts(agent.agent_id, task_type)
            wins, total = wins + s, total + s + f
        return wins / total if total else 0.5

    def on_event(self, event: Event, *, live: bool) -> None:
        """Log listener (also during a replay, with ``live`` False)."""
        self.conflicts.on_event(event, live=live)
        self.rebalancer.on_event(event)
        self.votes.on_event(event)
        self.knowledge.on_event(event)

    async def before_tool(
        self, agent: Agent, tool: str, arguments: Mapping[str, JSON], target: str
    ) -> str | None:
        """Run the conflict detector's check before a write lands; the refusal text, if any."""
        if tool not in WRITE_TOOLS:
            return None
        return await self.conflicts.before_write(
            self.member(agent), tool, arguments, target, self.session.file_access
        )
