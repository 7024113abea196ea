"""System notices: how messages and events read when they reach a model.

Every notice is plain, readable text with a short bracketed header saying who or what it
comes from. Nothing reaches a model as a repr or an object dump (the Elixir version sent
inspected tuples to the model; see the notes, §24 item 3). All prompt text the runtime writes
for a model lives here: message headers, the task service's notices
(:class:`TaskNoticeTexts`, given to it as its ``TaskNotices`` port), task briefs and the
loop's nudges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from loomkin.core.taskoutput import truncation_marker

if TYPE_CHECKING:
    from loomkin.bus import BusMessage
    from loomkin.core.taskview import Handoff, TaskView

__all__ = [
    "COMPLETION_NUDGE_TEXT",
    "EMPTY_ANSWER_NUDGE",
    "NOTICE_CAP",
    "TaskNoticeTexts",
    "compaction_summary_text",
    "deferred_tools_text",
    "elided_result_text",
    "redo_brief",
    "render_message",
    "speculative_brief",
    "task_brief",
]

NOTICE_CAP = 4000
"""Characters of a predecessor's output sent in a notice (the rest: ``task_read``)."""

COMPLETION_NUDGE_TEXT = (
    "[System] Your task is still open. If it is done, call task_complete with the result and "
    "the hand-off; if you are blocked, call task_update with status 'blocked' and say why."
)
EMPTY_ANSWER_NUDGE = (
    "[System] Your answer was empty. Call a tool, or answer in words (call task_complete if "
    "your task is done)."
)

_HEADERS = {
    "user_message": "Message from the user",
    "peer_message": "Message from {sender}",
    "question": "Question from {sender}",
    "answer": "Answer from {sender}",
    "insight": "Insight from {sender}",
    "task_completed": "Task finished",
    "task_failed": "Task failed",
    "task_assigned": "Task assigned to you",
    "partial_output": "New output from a task you depend on",
    "conflict_detected": "Conflict detected",
    "file_conflict": "URGENT: file conflict",
    "budget_exceeded": "URGENT: budget exceeded",
    "abort": "URGENT: abort",
    "vote_request": "Vote requested by {sender}",
    "vote_result": "Vote result",
    "escalation": "Escalation",
    "nudge": "Nudge from {sender}",
    "onboarding": "Onboarding brief from {sender}",
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


def task_brief(view: TaskView, predecessor_outputs: str) -> str:
    """The text an agent starting ``view`` reads: the task, its inputs, what to do at the end."""
    parts = [
        f"[Task assigned] {view.title} (task id {view.task_id}, priority {view.priority})",
    ]
    if view.description:
        parts.append(view.description)
    if predecessor_outputs:
        parts.append(predecessor_outputs)
    parts.append(
        "When you are done, call task_complete with the result and the hand-off "
        "(actions taken, files changed, decisions, open questions)."
    )
    return "\n\n".join(parts)


def speculative_brief(assumptions: list[str]) -> str:
    """What a speculating agent reads after its task brief."""
    stated = "\n".join(f"- {line}" for line in assumptions) or "- (none yet)"
    return (
        "[Speculative] This task's blockers have not finished. You work on these "
        f"assumptions:\n{stated}\nYour file and shell tools work in your own workspace; it "
        "is merged into the shared tree only if the assumptions hold when the blockers finish, "
        "else it is discarded and the task redone. Add any further assumption you rely on "
        "with assumption_add."
    )


def redo_brief(why: str, real_outputs: str) -> str:
    """What the agent redoing a discarded speculation reads after its task brief."""
    text = f"[Redo] A speculative attempt at this task was discarded: {why}."
    if real_outputs:
        text += f"\nThe real output it waited for:\n{real_outputs}"
    return text


class TaskNoticeTexts:
    """What the task service's messages say (the ``TaskNotices`` port of ``loomkin.tasks``)."""

    def assigned(self, view: TaskView, reason: str) -> str:
        return f"Task assigned to you: {view.title} (id {view.task_id}). {reason}".strip()

    def ended(
        self, view: TaskView, status: Literal["completed", "failed"], result: str | None
    ) -> str:
        owner = view.owner.name if view.owner else "nobody"
        text = f"Task {view.title!r} (id {view.task_id}) {status} by {owner}."
        if result:
            text += f"\nResult: {result}"
        return text

    def final_output(self, view: TaskView, result: str | None, handoff: Handoff) -> str:
        body = _capped("\n".join([result or "(no result text)", *handoff.lines()]), view.task_id)
        owner = view.owner.name if view.owner else "nobody"
        return (
            f"Task {view.title!r} (id {view.task_id}), whose output your task uses, was "
            f"completed by {owner}; no more chunks will come. Its final output:\n{body}"
        )

    def partial_output(
        self, view: TaskView, seq: int, content: str, completed: int | None, total: int | None
    ) -> str:
        progress = f" ({completed}/{total} items)" if completed is not None and total else ""
        return (
            f"Task {view.title!r} (id {view.task_id}) published chunk {seq}{progress}:\n"
            f"{_capped(content, view.task_id)}"
        )


def _capped(text: str, task_id: str) -> str:
    """``text`` cut to :data:`NOTICE_CAP` characters, pointing to the full output if cut."""
    if len(text) <= NOTICE_CAP:
        return text
    marker = truncation_marker(task_id)
    return text[: NOTICE_CAP - len(marker)].rstrip() + marker


def deferred_tools_text(tools: list[tuple[str, str]]) -> str:
    """The system prompt's list of tools callable by name whose schemas are not sent."""
    if not tools:
        return ""
    lines = "\n".join(f"- {name}: {purpose}" for name, purpose in tools)
    return (
        "More tools you can call (call load_tools with their names first to see their "
        f"arguments):\n{lines}"
    )


def compaction_summary_text(summary: str, turns: int) -> str:
    """The transcript entry that stands for ``turns`` older turns after a compaction."""
    return (
        f"[Context compacted] {turns} earlier turn(s) were summarised to fit the context "
        f"window. Re-read files with the tools when you need their content.\n{summary}"
    )


def elided_result_text(name: str, arguments: str, chars: int) -> str:
    """What stands for an old tool result dropped from the context (the call is kept)."""
    args = arguments if len(arguments) <= 200 else arguments[:200] + "…"
    return (
        f"[Result elided to save context: {chars:,} characters from {name}({args}). "
        "Call the tool again if you need it.]"
    )
