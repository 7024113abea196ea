"""Readable predecessor output for a dependent's context (``requires_output``, SPEC §3.6).

The Elixir system handed these to the model as an inspected term (elixir notes §14.5); here
they are plain text: one section per predecessor with its title and status, then its final
result and hand-off, or the partial chunks so far marked as partial with progress counts.
When the whole text exceeds the cap, the bodies share the room fairly (short ones stay
whole, long ones are cut) and every cut body ends with a pointer to the full output, so the
model knows there is more and how to read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.taskview import TaskView

__all__ = ["format_predecessor_outputs", "truncation_marker"]

_INTRO = "Output of the tasks this one depends on:"


def truncation_marker(task_id: str) -> str:
    """The text that ends a cut body, pointing at the full output."""
    return f"\n… [truncated; full output: task {task_id}, use task_read]"


def format_predecessor_outputs(predecessors: Sequence[TaskView], cap_chars: int = 4000) -> str:
    """Format the output of ``predecessors`` as one text of at most about ``cap_chars``.

    The cap holds whenever it leaves room for the intro line, every section header and
    every truncation marker; headers are never cut.

    Returns:
        The text, or ``""`` when ``predecessors`` is empty.
    """
    if not predecessors:
        return ""
    sections = [(_header(view), _body(view)) for view in predecessors]
    full = _join(sections)
    if len(full) <= cap_chars:
        return full
    fixed = len(_join([(header, "") for header, _ in sections]))
    allocations = _share([len(body) for _, body in sections], max(cap_chars - fixed, 0))
    cut = [
        (header, _cut(body, room, view.task_id))
        for (header, body), room, view in zip(sections, allocations, predecessors, strict=True)
    ]
    return _join(cut)


def _join(sections: Sequence[tuple[str, str]]) -> str:
    return "\n\n".join([_INTRO, *(header + body for header, body in sections)])


def _header(view: TaskView) -> str:
    name = f'Task {view.task_id} "{view.title}"'
    if view.status == "completed":
        return f"{name} (completed):"
    if view.partial_chunks or view.status == "partially_complete":
        return f"{name} ({view.status}; PARTIAL output so far{_progress(view)}):"
    return f"{name} ({view.status}): no output yet."


def _progress(view: TaskView) -> str:
    parts: list[str] = []
    if view.completed_items is not None and view.total_items is not None:
        parts.append(f"{view.completed_items}/{view.total_items} items done")
    elif view.completed_items is not None:
        parts.append(f"{view.completed_items} items done")
    if view.partial_chunks:
        count = len(view.partial_chunks)
        parts.append(f"{count} chunk{'s' if count != 1 else ''}")
    return f", {', '.join(parts)}" if parts else ""


def _body(view: TaskView) -> str:
    if view.status == "completed":
        lines = [view.result if view.result else "(no result text)"]
        if view.handoff is not None:
            lines.extend(view.handoff.lines())
        return "\n" + "\n".join(lines)
    if view.partial_chunks:
        return "\n" + "\n".join(f"[chunk {c.seq}] {c.content}" for c in view.partial_chunks)
    if view.status == "partially_complete" and view.result:
        return "\n" + view.result
    return ""


def _share(lengths: Sequence[int], room: int) -> list[int]:
    """Split ``room`` among bodies: short ones whole, the rest share what is left equally."""
    allocations = [0] * len(lengths)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    remaining = room
    for rank, index in enumerate(order):
        share = remaining // (len(order) - rank)
        allocations[index] = min(lengths[index], share)
        remaining -= allocations[index]
    return allocations


def _cut(body: str, room: int, task_id: str) -> str:
    if len(body) <= room:
        return body
    marker = truncation_marker(task_id)
    return body[: max(room - len(marker), 0)].rstrip() + marker
