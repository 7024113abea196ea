"""What a permission prompt would do, shown before the user answers it.

A prompt for ``file_write`` or ``file_edit`` carries the new text, not the change: the
preview reads the file as it is now (inside the project only, through the same path
resolution the tools use) and returns a unified diff of what the call would write. A
``shell`` prompt shows its command line. ``always`` says in words what "Allow always"
would cover: a grant is for one tool on one exact target (a file, a command), or on every
call of the tool when the call has no target (see ``PermissionGrant.covers``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.errors import PathEscapeError
from loomkin.tools.paths import resolve_in_project

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from loomkin.agents.desk import PermissionPrompt

__all__ = ["MAX_DIFF_LINES", "PermissionPreview", "permission_preview"]

MAX_DIFF_LINES = 400
"""Longest diff shown in a prompt (lines); the rest is summarised in one line."""
_MAX_READ = 1_000_000
"""Largest current file read for a diff (bytes); bigger files show the new text only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionPreview:
    """A prompt's effect in readable form."""

    diff: str
    """Unified diff of a file write or edit ('' for other tools)."""
    command: str
    """The command line of a ``shell`` call ('' for other tools)."""
    always: str
    """What "Allow always" would allow from now on, in words."""


def permission_preview(prompt: PermissionPrompt, project_root: Path) -> PermissionPreview:
    """Describe what answering ``prompt`` with allow would do in ``project_root``."""
    args = prompt.arguments
    diff = ""
    command = ""
    if prompt.tool in {"file_write", "file_edit"}:
        diff = _file_diff(prompt, project_root)
    elif prompt.tool == "shell":
        command = str(args.get("command", prompt.target))
    return PermissionPreview(diff=diff, command=command, always=_always(prompt, project_root))


def _always(prompt: PermissionPrompt, root: Path) -> str:
    if not prompt.target:
        return f"every {prompt.tool} call, by any agent of this session"
    shown = _shown_path(prompt.target, root)
    if prompt.tool in {"file_write", "file_edit", "file_read"}:
        return f"{prompt.tool} on {shown} only (this one file), by any agent of this session"
    return f"{prompt.tool} with exactly `{shown}`, by any agent of this session"


def _shown_path(target: str, root: Path) -> str:
    prefix = str(root).rstrip("/") + "/"
    return target[len(prefix) :] if target.startswith(prefix) else target


def _file_diff(prompt: PermissionPrompt, root: Path) -> str:
    args = prompt.arguments
    path_arg = args.get("path")
    if not isinstance(path_arg, str):
        return ""
    try:
        path = resolve_in_project(root, path_arg)
    except PathEscapeError:
        return ""  # outside the project: the tool refuses it; nothing is read for a preview
    old = _read(path)
    new = str(args.get("content", "")) if prompt.tool == "file_write" else _edited(old, args)
    if old is None and prompt.tool == "file_edit":
        old, new = str(args.get("old_string", "")), str(args.get("new_string", ""))
    name = _shown_path(str(path), root)
    lines = list(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{name}" if old is not None else "/dev/null",
            tofile=f"b/{name}",
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        more = len(lines) - MAX_DIFF_LINES
        lines = [*lines[:MAX_DIFF_LINES], f"… {more} more diff lines\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _read(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > _MAX_READ:
            return None
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return None


def _edited(old: str | None, args: Mapping[str, object]) -> str:
    before, after = str(args.get("old_string", "")), str(args.get("new_string", ""))
    if old is None:
        return after
    if args.get("replace_all"):
        return old.replace(before, after)
    return old.replace(before, after, 1)
