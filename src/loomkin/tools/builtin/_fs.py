"""File-system helpers shared by the file and search tools (blocking; run them in a thread)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.errors import PathEscapeError, ToolError
from loomkin.tools.paths import display_path, resolve_in_project

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "SKIP_DIRS",
    "glob_to_regex",
    "is_binary",
    "resolve",
    "walk_files",
]

SKIP_DIRS = frozenset(
    {
        ".git",
        ".loomkin",
        "node_modules",
        "__pycache__",
        ".venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
"""Directories the search and listing tools never enter (VCS data, caches, dependencies)."""

_SNIFF_BYTES = 8192


def resolve(project_root: Path, user_path: str) -> Path:
    """Resolve a model-supplied path inside the project, as a :class:`ToolError` on escape."""
    try:
        return resolve_in_project(project_root, user_path)
    except PathEscapeError as exc:
        raise ToolError(str(exc)) from None


def is_binary(head: bytes) -> bool:
    """Guess whether data is binary: a NUL byte, or not UTF-8, in its first 8 KiB."""
    sample = head[:_SNIFF_BYTES]
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start < len(sample) - 3
    return False


def walk_files(project_root: Path, start: Path) -> Iterator[Path]:
    """Yield the files under ``start`` in sorted order, skipping :data:`SKIP_DIRS`.

    Symlinked directories are not entered, and symlinked files that lead out of the project
    are skipped, so a search never reads outside the project.
    """
    root = project_root.resolve()
    if start.is_file():
        yield start
        return
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                continue
            yield path


def relative(project_root: Path, path: Path) -> str:
    """Return ``path`` relative to the project root, POSIX-style."""
    return display_path(project_root, path)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (``*``, ``?``, ``[...]``, ``**``) matching POSIX relative paths.

    A pattern without ``/`` matches the file name at any depth (``*.py`` finds every Python
    file), as models expect; a pattern with ``/`` matches the whole relative path.
    """
    if "/" not in pattern:
        pattern = "**/" + pattern
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            i = _glob_atom(pattern, i, out)
    return re.compile("".join(out) + r"\Z")


def _glob_atom(pattern: str, i: int, out: list[str]) -> int:
    char = pattern[i]
    if char == "*":
        out.append("[^/]*")
    elif char == "?":
        out.append("[^/]")
    elif char == "[":
        end = pattern.find("]", i + 2)
        if end == -1:
            out.append(re.escape(char))
        else:
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            return end + 1
    else:
        out.append(re.escape(char))
    return i + 1
