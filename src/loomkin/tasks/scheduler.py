"""The scheduler: ready tasks are assigned to idle agents as soon as either appears.

It is a projection of the log that reacts to live events, never polls: an event that can make a
task ready (a new task, a completion, a release, a milestone, a partial chunk), an agent
becoming idle or spawned, or a finished task freeing its owner marks the schedule dirty and
wakes the scheduler's loop, which plans with the pure policy of
:mod:`loomkin.core.scheduling` (effective priority first, then capability and load) and
appends one ``TaskAssigned`` per decision, each with its reason. An agent that finishes a task
therefore gets the next one without waiting for a lead's turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    CapacityMoved,
    MilestoneEmitted,
    PartialResultPublished,
    RecordedEvent,
    TaskAssigned,
    TaskCreated,
    TaskStatusChanged,
)
from loomkin.core.scheduling import AgentCandidate, CapabilityStats, plan_assignments
from loomkin.errors import LoomkinError
from loomkin.tasks.service import WorkerRef
from loomkin.tasks.stealing import plan_steals

if TYPE_CHECKING:
    from loomkin.ids import TaskId, TeamId
    from loomkin.tasks.service import TaskService

__all__ = ["Scheduler", "SchedulerStatistics"]

logger = logging.getLogger(__name__)

CandidateSource = Callable[["TeamId"], Sequence[AgentCandidate]]
"""Returns the agents of a team that may take tasks, with whether each is idle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerStatistics:
    """Counters of the scheduler's work."""

    rounds: int
    assignments: int
    refused: int
    """Assignments the board refused because the world moved between plan and append."""
    steals: int = 0
    """Queued tasks claimed for idle agents (work stealing)."""


class Scheduler:
    """Assigns ready tasks to idle agents, reacting to events."""

    def __init__(self, tasks: TaskService, candidates: CandidateSource) -> None:
        self.tasks = tasks
        self.candidates = candidates
        self.stats = CapabilityStats()
        self._wakeup = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._rounds = 0
        self._assignments = 0
        self._refused = 0
        self.after_round: Callable[[], Awaitable[None]] | None = None
        """Run after each planning round (the idle-capacity speculation policy)."""
        self._steals = 0

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Learn capabilities; when live, wake up if a task or an agent may have become free."""
        event = recorded.event
        self.stats.apply(event)
        if not live:
            return
        match event:
            case AgentStatusChanged(status="idle") | AgentSpawned() | TaskCreated():
                self.kick()
            case TaskStatusChanged(
                status="completed" | "failed" | "cancelled" | "pending" | "partially_complete"
            ):
                self.kick()
            case TaskStatusChanged(status="in_progress"):
                self.kick()  # its owner is busy now: tasks queued behind it may be stolen
            case MilestoneEmitted() | PartialResultPublished():
                self.kick()  # a milestone or a first chunk can make a dependent ready
            case TaskAssigned() | CapacityMoved():
                self.kick()  # a task queued on a busy agent may be stolen by an idle one
            case _:
                pass

    def caught_up(self) -> None:
        """After a restart, plan once: tasks may have been left ready."""
        self.kick()

    def kick(self) -> None:
        """Mark the schedule dirty (cheap; the loop plans once for many kicks)."""
        self._settled.clear()
        self._wakeup.set()

    def settled(self) -> bool:
        """True when no kick is waiting and no planning round is running."""
        return self._settled.is_set()

    async def wait_settled(self) -> None:
        """Wait until the scheduler has handled every kick so far."""
        await self._settled.wait()

    async def run_forever(self) -> None:
        """Plan and assign whenever kicked (run it under a supervisor)."""
        while True:
            if not self._wakeup.is_set():
                self._settled.set()
            await self._wakeup.wait()
            self._wakeup.clear()
            await self.schedule_once()

    async def schedule_once(self) -> int:
        """Assign every ready task an idle agent can take now; return how many."""
        self._rounds += 1
        board = self.tasks.board
        by_team: dict[TeamId, list[TaskId]] = {}
        for view in board.ready_tasks():
            by_team.setdefault(view.team_id, []).append(view.task_id)
        load = board.load()
        placed = 0
        for team_id in by_team:
            ready = board.ready_tasks(team_id)
            team = self.candidates(team_id)
            pool = [c for c in team if c.idle and not load.get(c.agent_id)]
            # Only working agents can be waited for (a task never waits on a crashed one).
            team = [c for c in team if c.status not in ("done", "crashed")]
            for decision in plan_assignments(ready, pool, self.stats, load, team):
                worker = WorkerRef(
                    agent_id=decision.agent_id, name=decision.agent_name, team_id=team_id
                )
                try:
                    await self.tasks.assign(decision.task_id, worker, reason=decision.reason)
                except LoomkinError as exc:
                    self._refused += 1
                    logger.info("assignment of %s refused: %s", decision.task_id, exc)
                    continue
                placed += 1
        for team_id in {*by_team, *self._teams_with_queues()}:
            placed += await self._steal(team_id)
        self._assignments += placed
        if self.after_round is not None:
            await self.after_round()
        return placed

    def _teams_with_queues(self) -> set[TeamId]:
        board = self.tasks.board
        return {v.team_id for v in board.tasks() if v.status == "assigned"}

    async def _steal(self, team_id: TeamId) -> int:
        """Idle agents claim ready tasks queued on busy ones (the same claim as the tool)."""
        load = self.tasks.board.load()
        pool = [c for c in self.candidates(team_id) if c.idle and not load.get(c.agent_id)]
        stolen = 0
        for steal in plan_steals(self.tasks.board, team_id, pool, self.stats, load):
            worker = WorkerRef(agent_id=steal.agent_id, name=steal.agent_name, team_id=team_id)
            try:
                await self.tasks.claim(
                    steal.task.task_id, worker, expected_owner=steal.from_owner, reason=steal.reason
                )
            except LoomkinError as exc:  # the owner started it, or another claim won
                self._refused += 1
                logger.info("claim of %s refused: %s", steal.task.task_id, exc)
                continue
            stolen += 1
        self._steals += stolen
        return stolen

    def statistics(self) -> SchedulerStatistics:
        """Return the scheduler's counters."""
        return SchedulerStatistics(
            rounds=self._rounds,
            assignments=self._assignments,
            refused=self._refused,
            steals=self._steals,
        )
