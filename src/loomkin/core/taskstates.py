"""Task statuses as a state machine: the transition table and the checks built on it.

The table is data (SPEC §3.6, elixir notes §14.4 and §14.7) so it can be read, tested and
shown to a model as is. Choices beyond the notes, and why:

* ``assigned`` is entered through ``TaskAssigned``/``TaskClaimed``, which set the owner;
  ``in_progress``/``paused`` → ``assigned`` is a reassignment by the rebalancer.
* Going back to ``pending`` releases the task (its owner and result are dropped): from
  ``assigned``, ``in_progress``, ``paused`` or ``blocked`` when the owner gives it up or is
  gone, from ``failed`` to retry it, from ``discarded_tentative`` after a failed assumption.
* ``partially_complete`` is ``in_progress`` with partial output published (the first
  ``publish_partial`` moves it there): every move out of ``in_progress`` is allowed out of it
  too, and everything that counts started or active work counts it the same way.
* ``completed`` and ``cancelled`` are final.
* Speculative work: ``pending``/``blocked`` → ``pending_speculative`` → ``completed_tentative``
  → ``completed`` (assumptions held) or ``discarded_tentative`` → ``pending``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from loomkin.core.records import TaskStatus
from loomkin.errors import InvalidTransition, UserError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.core.taskview import TaskView
    from loomkin.ids import TaskId

__all__ = [
    "ACTIVE_STATUSES",
    "CHUNK_STATUSES",
    "TRANSITIONS",
    "WORKING_STATUSES",
    "allowed_targets",
    "check_priority_value",
    "check_progress",
    "check_table",
    "check_transition",
]

_T = TaskStatus
_WORKING_TARGETS = frozenset[_T](
    {
        "completed",
        "failed",
        "cancelled",
        "paused",
        "blocked",
        "partially_complete",  # its first partial result was published
        "ready_for_review",
        "assigned",  # reassigned by the rebalancer (through TaskAssigned)
        "pending",  # released: the owner gave it up or crashed for good
    }
)
"""Where a task being worked on (``in_progress`` or ``partially_complete``) may go next."""
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = MappingProxyType(
    {
        "pending": frozenset[_T]({"assigned", "cancelled", "pending_speculative"}),
        # assigned → pending: released by its owner (or by the rebalancer).
        # assigned → pending_speculative: given to an agent as speculative work (in one batch).
        "assigned": frozenset[_T](
            {"in_progress", "pending", "blocked", "failed", "cancelled", "pending_speculative"}
        ),
        "in_progress": _WORKING_TARGETS,
        "paused": frozenset[_T]({"in_progress", "assigned", "pending", "failed", "cancelled"}),
        "blocked": frozenset[_T](
            {"in_progress", "assigned", "pending", "pending_speculative", "failed", "cancelled"}
        ),
        # Still being worked on, with partial output published: it may do whatever an
        # in-progress task may do next, and go back in progress (e.g. after a pause).
        "partially_complete": (_WORKING_TARGETS - {"partially_complete"}) | {"in_progress"},
        "ready_for_review": frozenset[_T]({"completed", "in_progress", "failed", "cancelled"}),
        "completed": frozenset[_T](),
        "failed": frozenset[_T]({"pending"}),  # retried: requeued as a fresh attempt
        "cancelled": frozenset[_T](),
        "pending_speculative": frozenset[_T](
            {"completed_tentative", "discarded_tentative", "failed", "cancelled"}
        ),
        "completed_tentative": frozenset[_T]({"completed", "discarded_tentative", "cancelled"}),
        "discarded_tentative": frozenset[_T]({"pending"}),  # requeued after a failed assumption
    }
)
"""Allowed status changes: ``TRANSITIONS[from]`` is the set of statuses it may go to."""

ACTIVE_STATUSES: frozenset[TaskStatus] = frozenset(
    {"assigned", "in_progress", "paused", "blocked", "partially_complete"}
)
"""Statuses in which a task occupies its owner (they count as the owner's load)."""

_NEEDS_OWNER: frozenset[TaskStatus] = frozenset({"assigned", "in_progress"})
CHUNK_STATUSES: frozenset[TaskStatus] = frozenset(
    {"in_progress", "partially_complete", "pending_speculative"}
)
"""Statuses in which a task may publish partial-result chunks."""

WORKING_STATUSES: frozenset[TaskStatus] = frozenset({"in_progress", "partially_complete"})
"""Statuses of a task its owner is working on now (started, not paused or blocked)."""


def check_transition(task: TaskView, new_status: TaskStatus) -> None:
    """Refuse a status change that :data:`TRANSITIONS` does not allow.

    Moving to ``assigned`` or ``in_progress`` also needs an owner (give one with
    ``TaskAssigned``; :meth:`TaskBoard.check_assign` checks that path).

    Raises:
        InvalidTransition: naming the task, both statuses and the allowed targets.
    """
    check_table(task, new_status)
    if new_status in _NEEDS_OWNER and task.owner is None:
        raise InvalidTransition(
            f"task {task.task_id!r} has no owner: assign it (TaskAssigned) before moving it "
            f"to {new_status!r}"
        )


def check_table(task: TaskView, new_status: TaskStatus) -> None:
    """Refuse a status change the table does not allow (owner rules aside).

    Raises:
        InvalidTransition: naming the task, both statuses and the allowed targets.
    """
    allowed = TRANSITIONS[task.status]
    if new_status in allowed:
        return
    if allowed:
        targets = ", ".join(repr(s) for s in sorted(allowed))
        hint = f"allowed from {task.status!r}: {targets}"
    else:
        hint = f"{task.status!r} is final"
    raise InvalidTransition(
        f"task {task.task_id!r} cannot go from {task.status!r} to {new_status!r}; {hint}"
    )


def check_priority_value(task_id: TaskId, priority: int) -> None:
    """Refuse a priority outside 1–5 (raises :class:`UserError`)."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 5:
        raise UserError(f"task {task_id!r}: priority must be 1 (highest) to 5, not {priority!r}")


def check_progress(task_id: TaskId, completed: int | None, total: int | None) -> None:
    """Refuse negative or impossible progress counts (raises :class:`UserError`)."""
    if (completed is not None and completed < 0) or (total is not None and total < 0):
        raise UserError(f"task {task_id!r}: progress counts cannot be negative")
    if completed is not None and total is not None and completed > total:
        raise UserError(f"task {task_id!r}: {completed} items done out of {total} is impossible")


def allowed_targets(status: TaskStatus) -> frozenset[TaskStatus]:
    """The statuses a task in ``status`` may go to."""
    return TRANSITIONS[status]
