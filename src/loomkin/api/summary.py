"""The run summary the page shows: files changed with their diffs, decisions, tasks, spend.

Folded from the session's events, so a finished session (not hosted here) gets the same
summary as a live one. A file counts as changed when a ``file_write`` or ``file_edit`` to it
completed ``ok`` (as in ``Session.summary``); its diff is built from the calls' own
arguments (an edit's old and new text, a write's whole content), in the order they ran.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.events import (
    DecisionLogged,
    ModelCallCompleted,
    SpeculationJudged,
    ToolCallCompleted,
    ToolCallStarted,
)

if TYPE_CHECKING:
    from loomkin.core.events import RecordedEvent

__all__ = ["FileChange", "RunSummary", "run_summary"]

MAX_CHANGE_LINES = 300
"""Longest diff kept per file (lines)."""
_WRITES = frozenset({"file_write", "file_edit"})


@dataclass(slots=True, kw_only=True)
class FileChange:
    """One changed file and the diff of the writes to it."""

    path: str
    writes: int = 0
    diff: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RunSummary:
    """What a session did, read off its log."""

    files: list[FileChange] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    model_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def run_summary(events: list[RecordedEvent], project_root: str) -> RunSummary:
    """Fold ``events`` of one session into its summary (paths shown relative to the root)."""
    out = RunSummary()
    started: dict[str, ToolCallStarted] = {}
    files: dict[str, FileChange] = {}
    prefix = project_root.rstrip("/") + "/"
    for recorded in events:
        event = recorded.event
        if isinstance(event, ModelCallCompleted | SpeculationJudged):  # the judge's too
            out.model_calls += 1
            out.input_tokens += event.input_tokens
            out.output_tokens += event.output_tokens
            out.cost_usd += event.cost_usd
        elif isinstance(event, ToolCallStarted):
            out.tool_calls += 1
            if event.tool in _WRITES:
                started[event.call_id] = event
        elif isinstance(event, ToolCallCompleted) and event.outcome == "ok":
            call = started.pop(event.call_id, None)
            if call is not None:
                path = call.target[len(prefix) :] if call.target.startswith(prefix) else call.target
                change = files.setdefault(path, FileChange(path=path))
                change.writes += 1
                if len(change.diff) < MAX_CHANGE_LINES:
                    change.diff.extend(_diff(call, path)[: MAX_CHANGE_LINES - len(change.diff)])
        elif isinstance(event, DecisionLogged) and event.node_type == "decision":
            out.decisions.append(event.title)
    out.files = list(files.values())
    return out


def _diff(call: ToolCallStarted, path: str) -> list[str]:
    args = call.arguments
    if call.tool == "file_write":
        old, new = "", str(args.get("content", ""))
    else:
        old, new = str(args.get("old_string", "")), str(args.get("new_string", ""))
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"a/{path}", f"b/{path}", lineterm=""
    )
    return list(lines)
