"""Immutable values the task board hands out: task views, chunks, hand-offs, priority changes."""

from __future__ import annotations

from dataclasses import dataclass

from loomkin.core.records import TaskStatus
from loomkin.ids import AgentId, SessionId, TaskId, TeamId

__all__ = ["BoardChanges", "Handoff", "PartialChunk", "PriorityChange", "TaskOwner", "TaskView"]

_FINISHED: frozenset[TaskStatus] = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOwner:
    """The agent that holds a task."""

    agent_id: AgentId
    name: str
    """The agent's display name (as in ``TaskAssigned.owner_name``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartialChunk:
    """One sequence-numbered piece of a task's output (SPEC §3.6, partial results)."""

    seq: int
    """Strictly increasing per task; consumers resume with ``after_seq``."""
    content: str
    completed_items: int | None = None
    """Progress after this chunk, when the producer counts items."""
    total_items: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff:
    """The structured hand-off a task leaves on completion."""

    actions_taken: tuple[str, ...] = ()
    files_changed: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    open_questions: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Whether every list is empty."""
        return not (
            self.actions_taken or self.files_changed or self.decisions or self.open_questions
        )

    def lines(self) -> list[str]:
        """The hand-off as readable lines (``Files changed: a.py; b.py``), empty lists left out.

        The one rendering of a hand-off: task briefs, completion notices and ``task_read``
        all show it this way.
        """
        return [
            f"{label}: {'; '.join(items)}"
            for label, items in (
                ("Actions taken", self.actions_taken),
                ("Files changed", self.files_changed),
                ("Decisions", self.decisions),
                ("Open questions", self.open_questions),
            )
            if items
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    """A snapshot of one task on the board."""

    task_id: TaskId
    session_id: SessionId
    team_id: TeamId
    title: str
    description: str = ""
    status: TaskStatus = "pending"
    owner: TaskOwner | None = None
    """Cleared whenever the task goes back to ``pending``."""
    priority: int = 3
    """Base priority, 1 (highest) to 5 (lowest)."""
    effective_priority: int = 3
    """``min(priority, effective priority of every dependent this task still holds up)``."""
    inherited_from: TaskId | None = None
    """The task whose base priority ``effective_priority`` is, when it is inherited."""
    result: str | None = None
    """The final result, the partial summary, or the failure/blocking reason."""
    note: str = ""
    """The note of the last status change."""
    partial_chunks: tuple[PartialChunk, ...] = ()
    completed_items: int | None = None
    """Latest progress count reported with a chunk."""
    total_items: int | None = None
    milestones: tuple[str, ...] = ()
    """Milestones emitted so far, in order."""
    handoff: Handoff | None = None
    """Set on completion."""
    role: str = ""
    """The role that should do it, when known."""
    work_s: float = 0.0
    """Estimated work in seconds, when known."""
    created_by: AgentId | None = None
    created_order: int = 0
    """Position among the board's tasks in creation order (FIFO tie-break)."""

    @property
    def finished(self) -> bool:
        """Whether the task is completed, failed or cancelled."""
        return self.status in _FINISHED

    @property
    def owner_id(self) -> AgentId | None:
        """The owner's agent id, if any."""
        return None if self.owner is None else self.owner.agent_id


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorityChange:
    """An effective priority that moved, with the reason to put on ``TaskPriorityChanged``."""

    task_id: TaskId
    old: int
    """Effective priority before the event."""
    new: int
    """Effective priority after the event."""
    inherited_from: TaskId | None = None
    """The task whose base priority is lent, or ``None`` when back to its own base."""
    reason: str = ""
    """For example ``"inherited from <task> (p1)"`` or ``"back to base priority p4"``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BoardChanges:
    """What one applied event changed that a scheduler or the service must react to."""

    newly_ready: tuple[TaskId, ...] = ()
    """Tasks the event made available, by (effective priority, creation order)."""
    priority_changes: tuple[PriorityChange, ...] = ()
    """Effective priorities the event moved (emit one ``TaskPriorityChanged`` per change)."""
