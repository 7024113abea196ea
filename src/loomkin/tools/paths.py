"""Confinement of user-supplied paths to the project root.

How this works and why: a path is checked twice. First lexically (``a/../../x`` is refused
even when ``a`` does not exist), then physically: the path is resolved with every symlink
followed, and the result must still lie under the resolved project root. The second check
catches symlinks anywhere in the path (a linked file or a linked directory) that point out of
the project; symlinks that stay inside are fine. ``~`` is not expanded: ``~/x`` names a
directory called ``~`` inside the project, exactly as a shell-less ``open`` would.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from loomkin.errors import PathEscapeError

__all__ = ["display_path", "resolve_in_project"]


def resolve_in_project(project_root: Path, user_path: str) -> Path:
    """Resolve ``user_path`` against ``project_root`` and refuse anything outside it.

    Args:
        project_root: The project directory (resolved here; need not be resolved already).
        user_path: A relative path, or an absolute path inside the project.

    Returns:
        The absolute, symlink-free path (it need not exist).

    Raises:
        PathEscapeError: the path is empty, holds a NUL byte, climbs out with ``..``, is
            absolute and outside the project, or goes through a symlink that leads outside.
    """
    if not user_path or not user_path.strip():
        raise PathEscapeError("Path is empty; give a path relative to the project root")
    if "\0" in user_path:
        raise PathEscapeError(f"Path {user_path!r} contains a NUL byte")
    root = project_root.resolve()
    raw = Path(user_path)
    if raw.is_absolute():
        lexical = Path(os.path.normpath(raw))
        if not (lexical.is_relative_to(root) or lexical.is_relative_to(project_root)):
            raise PathEscapeError(
                f"Path {user_path!r} is outside the project root {str(root)!r}; "
                "use a path inside the project"
            )
    else:
        normal = os.path.normpath(user_path)
        if normal == ".." or normal.startswith(f"..{os.sep}"):
            raise PathEscapeError(
                f"Path {user_path!r} leads out of the project root {str(root)!r} with '..'"
            )
        lexical = root / normal
    try:
        resolved = lexical.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop on Python < 3.13
        raise PathEscapeError(f"Path {user_path!r} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(root):
        raise PathEscapeError(
            f"Path {user_path!r} goes through a symlink to {str(resolved)!r}, "
            f"outside the project root {str(root)!r}"
        )
    return resolved


def display_path(project_root: Path, path: Path) -> str:
    """Return ``path`` relative to the project root, POSIX-style (``"."`` for the root).

    Args:
        project_root: The project directory.
        path: A resolved path inside the project.
    """
    root = project_root.resolve()
    try:
        rel = path.relative_to(root)
    except ValueError:
        return str(path)
    text = PurePosixPath(*rel.parts).as_posix() if rel.parts else "."
    return text
