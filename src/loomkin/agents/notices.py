"""System notices: how messages and events read when they reach a model.

Every notice is plain, readable text with a short bracketed header saying who or what it
comes from. Nothing reaches a model as a repr or an object dump (the Elixir version sent
inspected tuples to the model; see the notes, §24 item 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loomkin.bus import BusMessage

__all__ = ["render_message"]

_HEADERS = {
    "user_message": "Message from the user",
    "peer_message": "Message from {sender}",
    "question": "Question from {sender}",
    "answer": "Answer from {sender}",
    "insight": "Insight from {sender}",
    "tasks_unblocked": "Tasks now available",
    "task_completed": "Task finished",
    "task_failed": "Task failed",
    "task_assigned": "Task assigned to you",
    "milestone_reached": "Milestone reached",
    "partial_output": "New output from a task you depend on",
    "conflict_detected": "Conflict detected",
    "file_conflict": "URGENT: file conflict",
    "budget_exceeded": "URGENT: budget exceeded",
    "abort": "URGENT: abort",
    "vote_request": "Vote requested by {sender}",
    "vote_result": "Vote result",
    "review_request": "Review requested by {sender}",
    "review_response": "Review from {sender}",
    "escalation": "Escalation",
    "nudge": "Nudge from {sender}",
}


def render_message(message: BusMessage) -> str:
    """Return the text a model sees for ``message``."""
    if message.msg_type == "user_message":
        return message.content
    template = _HEADERS.get(message.msg_type, "Message ({kind}) from {sender}")
    kind = (message.data or {}).get("kind")
    if message.msg_type == "insight" and isinstance(kind, str) and kind:
        template = kind.capitalize() + " from {sender}"  # "Blocker from dora", not "Insight"
    sender = message.from_name or "system"
    if message.from_team and message.from_agent:
        team = (message.data or {}).get("from_team_name") or message.from_team
        sender = f"{sender} (team {team})"
    header = template.format(sender=sender, kind=message.msg_type)
    return f"[{header}]\n{message.content}"
