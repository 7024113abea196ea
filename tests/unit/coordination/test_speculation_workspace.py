"""Overlay workspaces (projects that are not git repositories): copy, merge, conflict, sweep."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from loomkin.coordination.speculation import Workspaces
from loomkin.testing.repos import git_repo

if TYPE_CHECKING:
    from pathlib import Path


def test_overlay_merges_only_its_own_changes_and_refuses_a_moved_shared_file(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        (tmp_path / "a.py").write_text("a = 1\n")
        (tmp_path / "b.py").write_text("b = 1\n")
        (tmp_path / "gone.py").write_text("x\n")
        spaces = Workspaces(tmp_path)
        assert not spaces.is_git()
        ws = await spaces.create("t1")
        assert ws.kind == "overlay"
        (ws.path / "a.py").write_text("a = 2\n")
        (ws.path / "new.py").write_text("new\n")
        (ws.path / "gone.py").unlink()
        (tmp_path / "b.py").write_text("b = 2\n")  # the shared tree moved elsewhere: fine
        merged = await spaces.merge(ws, "m")
        assert merged.ok
        assert merged.merged == ("a.py", "gone.py", "new.py")
        assert (tmp_path / "a.py").read_text() == "a = 2\n"
        assert (tmp_path / "new.py").read_text() == "new\n"
        assert not (tmp_path / "gone.py").exists()
        assert (tmp_path / "b.py").read_text() == "b = 2\n"
        await spaces.remove(ws.path)
        assert not ws.path.exists()

        other = await spaces.create("t2")
        (other.path / "a.py").write_text("a = 3\n")
        (tmp_path / "a.py").write_text("a = 4\n")  # both changed a.py: a real conflict
        refused = await spaces.merge(other, "m")
        assert refused.conflicts == ("a.py",)
        assert (tmp_path / "a.py").read_text() == "a = 4\n"  # nothing applied

        orphan = await spaces.create("t3")
        assert await spaces.sweep({"t2"}) == ["t3"]
        assert not orphan.path.exists()
        assert other.path.exists()

    asyncio.run(run())


LINES = "".join(f"line {n}\n" for n in range(1, 21))


def test_git_merge_keeps_both_sides_edits_to_different_lines_of_one_file(tmp_path: Path) -> None:
    async def run() -> None:
        repo = git_repo(tmp_path / "p", {"m.py": LINES, "old.py": "old\n"})
        spaces = Workspaces(repo)
        ws = await spaces.create("t1")
        assert ws.kind == "git"
        (ws.path / "m.py").write_text(LINES.replace("line 2\n", "line 2 (speculation)\n"))
        (ws.path / "old.py").rename(ws.path / "new.py")  # a rename: a delete plus an add
        (ws.path / "run.sh").write_text("echo hi\n")
        (ws.path / "naïve *.txt").write_text("odd name\n")
        (ws.path / "run.sh").chmod(0o755)
        (repo / "m.py").write_text(LINES.replace("line 19\n", "line 19 (shared)\n"))

        merged = await spaces.merge(ws, "m")

        assert merged.ok
        assert set(merged.merged) == {"m.py", "old.py", "new.py", "run.sh", "naïve *.txt"}
        assert (repo / "naïve *.txt").read_text() == "odd name\n"
        text = (repo / "m.py").read_text()
        assert "line 2 (speculation)\n" in text
        assert "line 19 (shared)\n" in text
        assert not (repo / "old.py").exists()
        assert (repo / "new.py").read_text() == "old\n"
        assert os.access(repo / "run.sh", os.X_OK)

    asyncio.run(run())


def test_git_merge_of_overlapping_edits_is_a_conflict_and_applies_nothing(tmp_path: Path) -> None:
    async def run() -> None:
        repo = git_repo(tmp_path / "p", {"m.py": LINES, "clean.py": "a = 1\n"})
        spaces = Workspaces(repo)
        ws = await spaces.create("t1")
        (ws.path / "m.py").write_text(LINES.replace("line 5\n", "line 5 (speculation)\n"))
        (ws.path / "clean.py").write_text("a = 2\n")
        (ws.path / "added.py").write_text("mine\n")
        (repo / "m.py").write_text(LINES.replace("line 5\n", "line 5 (shared)\n"))
        (repo / "added.py").write_text("theirs\n")  # added on both sides, differently

        refused = await spaces.merge(ws, "m")

        assert not refused.ok
        assert set(refused.conflicts) == {"m.py", "added.py"}
        # All or nothing: the clean file did not land either, and the shared edits stand.
        assert (repo / "clean.py").read_text() == "a = 1\n"
        assert "line 5 (shared)\n" in (repo / "m.py").read_text()
        assert (repo / "added.py").read_text() == "theirs\n"

    asyncio.run(run())


def test_git_merge_of_the_same_edit_on_both_sides_is_no_conflict(tmp_path: Path) -> None:
    async def run() -> None:
        repo = git_repo(tmp_path / "p", {"m.py": LINES})
        spaces = Workspaces(repo)
        ws = await spaces.create("t1")
        same = LINES.replace("line 7\n", "line 7 (both)\n")
        (ws.path / "m.py").write_text(same)
        (repo / "m.py").write_text(same)

        merged = await spaces.merge(ws, "m")

        assert merged.ok
        assert (repo / "m.py").read_text() == same

    asyncio.run(run())
