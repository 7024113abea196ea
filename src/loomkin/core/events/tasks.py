"""Task board events: creation, assignment, status, dependencies, milestones, partial results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import Event, register
from loomkin.core.records import DepKind, TaskStatus
from loomkin.ids import AgentId, TaskId, TeamId

__all__ = [
    "AnyTaskEvent",
    "DependencyAdded",
    "MilestoneEmitted",
    "PartialResultPublished",
    "TaskAssigned",
    "TaskClaimed",
    "TaskCreated",
    "TaskEvent",
    "TaskPriorityChanged",
    "TaskStatusChanged",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent(Event):
    """Base of events about one task; they go to the task's own stream."""

    task_id: TaskId

    def stream(self) -> str:
        return f"task:{self.task_id}"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCreated(TaskEvent):
    """A task was put on a team's board (status ``pending``)."""

    kind: Literal["task_created"] = "task_created"
    team_id: TeamId
    title: str
    description: str = ""
    priority: int = 3
    """1 (highest) to 5 (lowest)."""
    role: str = ""
    """The role that should do it, when known."""
    created_by: AgentId | None = None
    work_s: float = 0.0
    """Estimated work in seconds, when known (benchmarks set it)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAssigned(TaskEvent):
    """A task got an owner; ``reason`` says why this agent (scheduler decisions are explained)."""

    kind: Literal["task_assigned"] = "task_assigned"
    owner: AgentId
    owner_name: str
    assigned_by: str = "scheduler"
    reason: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskClaimed(TaskEvent):
    """An agent claimed a ready task queued for another (work stealing; SPEC §3.10).

    The service appends it with the task stream's expected version, so two claims of one task
    cannot both succeed; ``previous_owner`` is the owner the claimer saw (``None`` when the
    task was unowned).
    """

    kind: Literal["task_claimed"] = "task_claimed"
    owner: AgentId
    owner_name: str
    previous_owner: AgentId | None = None
    reason: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStatusChanged(TaskEvent):
    """A task changed status; ``result`` carries the final, partial or cancelled output.

    On ``completed`` the structured hand-off fields say what was done.
    """

    kind: Literal["task_status_changed"] = "task_status_changed"
    status: TaskStatus
    previous: TaskStatus
    note: str = ""
    result: str | None = None
    actions_taken: tuple[str, ...] = ()
    files_changed: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    open_questions: tuple[str, ...] = ()
    by: AgentId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class DependencyAdded(TaskEvent):
    """``task_id`` now depends on ``depends_on`` (possibly a task of another team)."""

    kind: Literal["dependency_added"] = "dependency_added"
    depends_on: TaskId
    dep_kind: DepKind = "blocks"
    milestone: str | None = None
    """A named milestone of the predecessor to wait for instead of its completion."""
    added_by: AgentId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneEmitted(TaskEvent):
    """The owner of ``task_id`` reached a named milestone (idempotent per name)."""

    kind: Literal["milestone_emitted"] = "milestone_emitted"
    name: str
    by: AgentId | None = None
    note: str = ""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class PartialResultPublished(TaskEvent):
    """A chunk of a task's output, sequence-numbered, with optional progress counts."""

    kind: Literal["partial_result_published"] = "partial_result_published"
    seq: int
    content: str
    completed_items: int | None = None
    total_items: int | None = None
    by: AgentId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPriorityChanged(TaskEvent):
    """A task's base or effective priority changed (priority inheritance included)."""

    kind: Literal["task_priority_changed"] = "task_priority_changed"
    priority: int
    """The base priority after the change, 1 (highest) to 5 (lowest)."""
    effective_priority: int
    """The effective priority after inheritance; informational, the task board derives it."""
    reason: str = ""
    """Why, for example ``"inherited from <task> (p1)"``."""


AnyTaskEvent = (
    TaskCreated
    | TaskAssigned
    | TaskClaimed
    | TaskStatusChanged
    | DependencyAdded
    | MilestoneEmitted
    | PartialResultPublished
    | TaskPriorityChanged
)
"""Every task event kind the task board projects (match on it exhaustively)."""
