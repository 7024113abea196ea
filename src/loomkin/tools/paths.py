"""Confinement of user-supplied paths to the project root.

How this works and why: a path is checked twice. First lexically (``a/../../x`` is refused
even when ``a`` does not exist), then physically: the path is resolved with every symlink
followed, and the result must still lie under the resolved project root. The second check
catches symlinks anywhere in the path (a linked file or a linked directory) that point out of
the project; symlinks that stay inside are fine. ``~`` is not expanded: ``~/x`` names a
directory called ``~`` inside the project, exactly as a shell-less ``open`` would.

Inside the project, three places belong to someone else (:func:`protection`): ``.git``
(its configuration and hooks run programs on the next git command, so the file tools never
write it; reading is fine), ``.loomkin`` (Loomkin's own state: never written, and the web
server's token file ``server.json`` never read) and ``loomkin.toml`` at the root (the
permissions and shell policy of the next session: an agent must not grant itself more).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from loomkin.errors import PathEscapeError

__all__ = [
    "CONFIG_FILE",
    "GIT_DIR",
    "SECRET_FILES",
    "STATE_DIR",
    "display_path",
    "protection",
    "resolve_in_project",
]

GIT_DIR = ".git"
"""Git's internals; a directory of this name at any depth is a repository's."""
STATE_DIR = ".loomkin"
"""Loomkin's own state in a project (event store, web server file)."""
CONFIG_FILE = "loomkin.toml"
"""The project's configuration (``loomkin.service.config.CONFIG_FILE``): never written."""
SECRET_FILES = frozenset({"server.json"})
"""Files of :data:`STATE_DIR` that hold secrets (the web token): never read by a tool."""


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


def protection(project_root: Path, path: Path, *, write: bool) -> str | None:
    """Why a file tool may not read (or write) ``path``, or None when it may.

    Args:
        project_root: The project directory.
        path: A resolved path inside the project (from :func:`resolve_in_project`).
        write: True to ask about writing (creating, changing, removing) the path.

    Returns:
        A sentence for the model naming the protected place, or None.
    """
    try:
        parts = path.relative_to(project_root.resolve()).parts
    except ValueError:
        return f"{str(path)!r} is outside the project"
    if STATE_DIR in parts:
        if write:
            return f"{STATE_DIR}/ holds Loomkin's own state; tools never change it"
        if parts[-1] in SECRET_FILES:
            return f"{STATE_DIR}/{parts[-1]} holds a secret (the web server's token)"
    if write and parts == (CONFIG_FILE,):
        return (
            f"{CONFIG_FILE} holds the permissions and shell policy; tools never change it "
            "(ask the user to edit it)"
        )
    if write and GIT_DIR in parts:
        return (
            f"{GIT_DIR}/ holds git's internals; its configuration and hooks would run programs "
            "on the next git command, so tools never write it (use the git tool)"
        )
    return None
