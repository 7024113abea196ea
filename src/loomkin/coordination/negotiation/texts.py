"""What the assignee and the assigner read about a negotiation (names, never ids alone)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loomkin.coordination.negotiation.records import Objection
    from loomkin.core.taskview import TaskView

__all__ = ["objection_line", "offer_text", "outcome_text"]


def objection_line(agent_name: str, objection: Objection) -> str:
    """One line: who objects, how, and why."""
    match objection.response, objection.counter_kind:
        case "decline", _:
            what = "declines it"
        case _, "suggest_agent":
            what = f"suggests {objection.suggested_name or 'another agent'} instead"
        case _, "clarify":
            what = "asks for clarification"
        case _, "conflict":
            what = "flags a conflict"
        case _:
            what = "objects"
    reason = f": {objection.reason}" if objection.reason else ""
    return f"{agent_name} {what}{reason}"


def offer_text(task: TaskView, agent_name: str, objection: Objection, window_s: float) -> str:
    """The assigner's notice: the objection and the call that answers it."""
    return (
        f"Negotiation on task {task.title!r} (id {task.task_id}), which you assigned to "
        f"{agent_name}: {objection_line(agent_name, objection)}.\n"
        f"Answer within {window_s:.0f} s with negotiation_resolve(task_id={task.task_id!r}, "
        'resolution="accept" | "override" | "reassign", agent=<name when reassigning>, '
        "reason=...). Accept moves the task as asked (after a decline: to the best other "
        "agent); override keeps it with "
        f"{agent_name}; without an answer the assignment stands."
    )


def outcome_text(task: TaskView, outcome: str, new_owner: str, reason: str) -> str:
    """The assignee's notice of how its objection was decided."""
    if outcome == "reassigned":
        head = f"Task {task.title!r} (id {task.task_id}) went to {new_owner}; it is not yours now."
    else:
        head = (
            f"Task {task.title!r} (id {task.task_id}) stays yours: carry on with it "
            "and finish it with task_complete."
        )
    return f"{head} ({reason})" if reason else head
