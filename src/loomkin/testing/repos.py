"""Throwaway git repositories for tests of worktrees, merges and the git tool."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["git", "git_repo"]


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` as a throwaway identity; return what it printed (raise on failure)."""
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def git_repo(root: Path, files: Mapping[str, str]) -> Path:
    """Create ``root`` as a git repository whose one commit holds ``files`` (relative paths)."""
    root.mkdir(parents=True)
    for rel, text in files.items():
        (root / rel).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root
