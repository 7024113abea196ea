"""Isolated workspaces for speculative tasks: a git worktree, or an overlay copy.

How this works and why:

* **Git projects** get a worktree under ``.loomkin/worktrees/<task>`` on its own branch
  ``loomkin/speculation/<task>``. Agents edit the shared tree without committing, so the
  worktree starts from ``HEAD`` plus the shared tree's uncommitted and untracked files (a
  "snapshot" commit on the branch): the speculative agent sees what its peers see at the start.
* **Other projects** get an overlay: a copy of the tree with a manifest of the base hashes
  beside it (``<task>.base.json``), so a merge can tell which side changed what.
* **Merging** brings only the speculative agent's own changes (the diff from the snapshot,
  or the overlay's changed files) into the shared tree, all or nothing. In a git workspace a
  file that the shared tree also changed since the snapshot gets a three-way merge (``git
  merge-file``, snapshot as the base): edits to different lines both survive, and only
  overlapping edits (or a file deleted on one side and edited on the other, or a binary file
  changed on both) are a real conflict, reported with the files. An overlay keeps no base
  contents, so there any file changed on both sides conflicts. Nothing reaches the shared
  tree before a merge.
* **Never leaked.** Every workspace lives under one directory; :func:`sweep` removes any
  that no live speculation owns (after a crash), and discarding removes the branch as well.

Git runs as a child process on a worker thread: these are Loomkin's own fixed commands, not
model-written ones, so they do not go through the shell tool's guard or sandbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loomkin.errors import LoomkinError

__all__ = ["WORKTREES", "MergeResult", "Workspace", "WorkspaceError", "Workspaces"]

WORKTREES = Path(".loomkin") / "worktrees"
"""Where workspaces live, relative to the project root."""
_IGNORED = (".git", ".loomkin")
_GIT_ID = ("-c", "user.name=loomkin", "-c", "user.email=loomkin@localhost")


class WorkspaceError(LoomkinError):
    """A workspace could not be created, merged or removed (the message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """One speculation's isolated copy of the project."""

    path: Path
    kind: Literal["git", "overlay"]
    branch: str = ""
    base: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MergeResult:
    """What a merge did: the files it brought over, or the ones that conflicted."""

    merged: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the workspace's changes reached the shared tree."""
        return not self.conflicts


def _git(cwd: Path, *args: str, data: bytes | None = None, check: bool = True) -> str:
    done = subprocess.run(
        ["git", *_GIT_ID, *args],
        cwd=cwd,
        input=data,
        capture_output=True,
        check=False,
    )
    if check and done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise WorkspaceError(f"git {' '.join(args[:2])} failed in {cwd}: {err}")
    return done.stdout.decode(errors="replace")


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """Relative path → content hash of every regular file (``.git``/``.loomkin`` skipped)."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED]
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():
                found[str(full.relative_to(root))] = _hash(full)
    return found


@dataclass(frozen=True, slots=True)
class _Version:
    """One side's version of a file: its bytes, and whether git marks it executable/a link."""

    data: bytes
    mode: str = "100644"


def _blob(repo: Path, rev: str, rel: str) -> _Version | None:
    """The file ``rel`` at ``rev`` in ``repo``, or ``None`` when it does not exist there."""
    listed = _git(repo, "--literal-pathspecs", "ls-tree", rev, "--", rel).split(maxsplit=3)
    if len(listed) < 3 or listed[1] != "blob":
        return None
    shown = subprocess.run(
        ["git", "cat-file", "blob", listed[2]], cwd=repo, capture_output=True, check=True
    )
    return _Version(shown.stdout, listed[0])


def _read(path: Path) -> _Version | None:
    """The shared tree's current version of a file (``None``: absent)."""
    if path.is_symlink():
        return _Version(os.readlink(path).encode(), "120000")
    if not path.is_file():
        return None
    mode = "100755" if os.access(path, os.X_OK) else "100644"
    return _Version(path.read_bytes(), mode)


def _three_way(
    base: _Version | None, ours: _Version | None, theirs: _Version | None
) -> _Version | None:
    """Line-level merge of both sides' edits since ``base``; ``None`` when they collide."""
    if base is None or ours is None or theirs is None:
        return None  # added or deleted on some side: nothing to merge line by line
    sides = {"ours": ours, "base": base, "theirs": theirs}  # git merge-file's argument order
    if any(v.mode == "120000" or b"\0" in v.data for v in sides.values()):
        return None  # a symbolic link or a binary file changed on both sides
    with tempfile.TemporaryDirectory(prefix="loomkin-merge-") as tmp:
        paths = []
        for name, version in sides.items():
            (Path(tmp) / name).write_bytes(version.data)
            paths.append(str(Path(tmp) / name))
        # Exit status: 0 clean, the number of conflicting hunks, or negative on error.
        done = subprocess.run(
            ["git", "merge-file", "-p", "-q", *paths], capture_output=True, check=False
        )
    if done.returncode != 0:
        return None
    mode = ours.mode if ours.mode != base.mode else theirs.mode
    return _Version(done.stdout, mode)


def _write(path: Path, version: _Version | None) -> None:
    """Make the shared tree's file ``version`` (``None``: delete it)."""
    if path.is_symlink() or version is None:
        path.unlink(missing_ok=True)
    if version is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if version.mode == "120000":
        path.symlink_to(version.data.decode())
        return
    path.write_bytes(version.data)
    # Only the executable bits follow git's mode; the rest stays as the user's umask made it.
    current = path.stat().st_mode & 0o777
    wanted = current | (current & 0o444) >> 2 if version.mode == "100755" else current & ~0o111
    if wanted != current:
        path.chmod(wanted)


class Workspaces:
    """Creates, merges and removes the workspaces of one project."""

    def __init__(self, project_root: Path) -> None:
        self.root = Path(project_root).resolve()
        self.home = self.root / WORKTREES

    def is_git(self) -> bool:
        """True when the project root is the top of a git work tree with a commit."""
        if not (self.root / ".git").exists() or shutil.which("git") is None:
            return False
        top = _git(self.root, "rev-parse", "--show-toplevel", check=False).strip()
        head = _git(self.root, "rev-parse", "--verify", "-q", "HEAD", check=False).strip()
        return bool(head) and Path(top).resolve() == self.root

    def path_for(self, name: str) -> Path:
        """Where the workspace called ``name`` lives."""
        return self.home / name

    async def create(self, name: str) -> Workspace:
        """Make the workspace ``name`` (a worktree in a git project, else an overlay)."""
        return await asyncio.to_thread(self._create, name)

    def _create(self, name: str) -> Workspace:
        path = self.path_for(name)
        if path.exists():
            raise WorkspaceError(f"workspace {name!r} already exists at {path}")
        self.home.mkdir(parents=True, exist_ok=True)
        if self.is_git():
            return self._create_git(name, path)
        shutil.copytree(self.root, path, ignore=shutil.ignore_patterns(*_IGNORED), symlinks=True)
        (self.home / f"{name}.base.json").write_text(json.dumps(_tree(path)))
        return Workspace(path=path, kind="overlay")

    def _create_git(self, name: str, path: Path) -> Workspace:
        branch = f"loomkin/speculation/{name}"
        _git(self.root, "worktree", "add", "-q", "-b", branch, str(path), "HEAD")
        exclude = ":(exclude).loomkin"
        dirty = _git(self.root, "diff", "--binary", "HEAD", "--", ".", exclude)
        if dirty.strip():
            _git(path, "apply", "--whitespace=nowarn", "-", data=dirty.encode())
        untracked = _git(
            self.root, "ls-files", "--others", "--exclude-standard", "--", ".", exclude
        )
        for rel in untracked.splitlines():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.root / rel, target)
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "--allow-empty", "-m", f"snapshot of the shared tree for {name}")
        base = _git(path, "rev-parse", "HEAD").strip()
        return Workspace(path=path, kind="git", branch=branch, base=base)

    async def merge(self, ws: Workspace, message: str) -> MergeResult:
        """Bring the workspace's own changes into the shared tree, all or nothing."""
        return await asyncio.to_thread(self._merge, ws, message)

    def _merge(self, ws: Workspace, message: str) -> MergeResult:
        if not ws.path.is_dir():
            raise WorkspaceError(f"workspace {ws.path} is gone")
        if ws.kind == "git":
            return self._merge_git(ws, message)
        return self._merge_overlay(ws)

    def _merge_git(self, ws: Workspace, message: str) -> MergeResult:
        _git(ws.path, "add", "-A")
        _git(ws.path, "commit", "-q", "--allow-empty", "-m", message)
        # --no-renames: a rename must reach the shared tree as a delete plus an add.
        names = _git(ws.path, "diff", "-z", "--no-renames", "--name-only", ws.base, "HEAD")
        files = tuple(name for name in names.split("\0") if name)
        if not files:
            return MergeResult()
        plan: dict[str, _Version | None] = {}
        conflicts = []
        for rel in files:
            base, ours = _blob(ws.path, ws.base, rel), _blob(ws.path, "HEAD", rel)
            theirs = _read(self.root / rel)
            if theirs in (base, ours):
                plan[rel] = ours  # only the speculation moved (or both made the same edit)
                continue
            merged = _three_way(base, ours, theirs)
            if merged is None:
                conflicts.append(rel)
            else:
                plan[rel] = merged
        if conflicts:
            return MergeResult(conflicts=tuple(conflicts))
        for rel, version in plan.items():
            _write(self.root / rel, version)
        return MergeResult(merged=files)

    def _merge_overlay(self, ws: Workspace) -> MergeResult:
        base: dict[str, str] = json.loads((self.home / f"{ws.path.name}.base.json").read_text())
        now = _tree(ws.path)
        changed = sorted(rel for rel in base.keys() | now.keys() if base.get(rel) != now.get(rel))
        conflicts = []
        for rel in changed:
            shared = self.root / rel
            current = _hash(shared) if shared.is_file() else None
            if current != base.get(rel):
                conflicts.append(rel)
        if conflicts:
            return MergeResult(conflicts=tuple(conflicts))
        for rel in changed:
            shared = self.root / rel
            if rel in now:
                shared.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ws.path / rel, shared)
            else:
                shared.unlink(missing_ok=True)
        return MergeResult(merged=tuple(changed))

    async def remove(self, ws_path: Path, branch: str = "") -> None:
        """Delete a workspace (and its branch); missing pieces are fine."""
        await asyncio.to_thread(self._remove, ws_path, branch)

    def _remove(self, ws_path: Path, branch: str) -> None:
        if (self.root / ".git").exists() and shutil.which("git") is not None:
            _git(self.root, "worktree", "remove", "--force", str(ws_path), check=False)
            _git(self.root, "worktree", "prune", check=False)
            if branch:
                _git(self.root, "branch", "-D", branch, check=False)
        if ws_path.exists():
            shutil.rmtree(ws_path)
        (self.home / f"{ws_path.name}.base.json").unlink(missing_ok=True)

    def exists(self, ws_path: Path) -> bool:
        """True when the workspace directory is still there (a crash may have lost it)."""
        return ws_path.is_dir()

    async def sweep(self, keep: set[str]) -> list[str]:
        """Remove every workspace not named in ``keep`` (orphans of a crash); their names."""
        return await asyncio.to_thread(self._sweep, keep)

    def _sweep(self, keep: set[str]) -> list[str]:
        if not self.home.is_dir():
            return []
        removed = []
        for entry in sorted(self.home.iterdir()):
            name = entry.name.removesuffix(".base.json")
            if name in keep:
                continue
            if entry.is_dir():
                self._remove(entry, f"loomkin/speculation/{name}")
                removed.append(name)
            else:
                entry.unlink(missing_ok=True)
        return removed
