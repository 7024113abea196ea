"""A small driver for task-board tests: every action runs its check, then applies the event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events.tasks import (
    DependencyAdded,
    MilestoneEmitted,
    PartialResultPublished,
    TaskAssigned,
    TaskClaimed,
    TaskCreated,
    TaskPriorityChanged,
    TaskStatusChanged,
)
from loomkin.core.tasks import BoardChanges, TaskBoard
from loomkin.ids import AgentId, SessionId, TaskId, TeamId

if TYPE_CHECKING:
    from loomkin.core.records import DepKind, TaskStatus

SESSION = SessionId("session-1")
TEAM = TeamId("team-1")


def tid(name: str) -> TaskId:
    return TaskId(name)


def aid(name: str) -> AgentId:
    return AgentId(name)


class Driver:
    """Builds events the way the task service will: check first, then append and apply."""

    def __init__(self, board: TaskBoard | None = None) -> None:
        self.board = board if board is not None else TaskBoard()
        self.events: list[object] = []

    def _apply(self, event: object) -> BoardChanges:
        self.events.append(event)
        return self.board.apply(event)  # type: ignore[arg-type]

    def create(
        self,
        name: str,
        priority: int = 3,
        *,
        title: str | None = None,
        role: str = "",
        team: TeamId = TEAM,
    ) -> BoardChanges:
        self.board.check_create(tid(name), title or name, priority)
        return self._apply(
            TaskCreated(
                session_id=SESSION,
                task_id=tid(name),
                team_id=team,
                title=title or name,
                priority=priority,
                role=role,
            )
        )

    def assign(self, name: str, agent: str) -> BoardChanges:
        if not self.board.check_assign(tid(name), aid(agent)):
            return BoardChanges()
        return self._apply(
            TaskAssigned(
                session_id=SESSION, task_id=tid(name), owner=aid(agent), owner_name=agent.title()
            )
        )

    def claim(self, name: str, agent: str, expected: str | None) -> BoardChanges:
        expected_id = None if expected is None else aid(expected)
        self.board.check_claim(tid(name), aid(agent), expected_id)
        return self._apply(
            TaskClaimed(
                session_id=SESSION,
                task_id=tid(name),
                owner=aid(agent),
                owner_name=agent.title(),
                previous_owner=expected_id,
            )
        )

    def status(
        self,
        name: str,
        status: TaskStatus,
        *,
        result: str | None = None,
        **handoff: tuple[str, ...],
    ) -> BoardChanges:
        previous = self.board.task(tid(name)).status
        self.board.check_status(tid(name), status)
        return self._apply(
            TaskStatusChanged(
                session_id=SESSION,
                task_id=tid(name),
                status=status,
                previous=previous,
                result=result,
                **handoff,  # type: ignore[arg-type]
            )
        )

    def start(self, name: str, agent: str = "ann") -> BoardChanges:
        self.assign(name, agent)
        return self.status(name, "in_progress")

    def finish(self, name: str, agent: str = "ann", result: str = "done") -> BoardChanges:
        if self.board.task(tid(name)).status != "in_progress":
            self.start(name, agent)
        return self.status(name, "completed", result=result)

    def dep(
        self, name: str, on: str, kind: DepKind = "blocks", milestone: str | None = None
    ) -> BoardChanges:
        if not self.board.check_dependency(tid(name), tid(on), kind, milestone):
            return BoardChanges()
        return self._apply(
            DependencyAdded(
                session_id=SESSION,
                task_id=tid(name),
                depends_on=tid(on),
                dep_kind=kind,
                milestone=milestone,
            )
        )

    def milestone(self, name: str, milestone: str, by: str) -> BoardChanges:
        if not self.board.check_milestone(tid(name), milestone, aid(by)):
            return BoardChanges()
        return self._apply(
            MilestoneEmitted(session_id=SESSION, task_id=tid(name), name=milestone, by=aid(by))
        )

    def chunk(
        self,
        name: str,
        seq: int,
        content: str,
        completed: int | None = None,
        total: int | None = None,
    ) -> BoardChanges:
        self.board.check_partial(tid(name), seq, completed_items=completed, total_items=total)
        return self._apply(
            PartialResultPublished(
                session_id=SESSION,
                task_id=tid(name),
                seq=seq,
                content=content,
                completed_items=completed,
                total_items=total,
            )
        )

    def reprioritize(self, name: str, priority: int) -> BoardChanges:
        if not self.board.check_priority(tid(name), priority):
            return BoardChanges()
        eff = self.board.effective_priority(tid(name))
        return self._apply(
            TaskPriorityChanged(
                session_id=SESSION, task_id=tid(name), priority=priority, effective_priority=eff
            )
        )

    def ready_ids(self) -> list[str]:
        return [v.task_id for v in self.board.ready_tasks()]
