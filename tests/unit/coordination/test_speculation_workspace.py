"""Overlay workspaces (projects that are not git repositories): copy, merge, conflict, sweep."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loomkin.coordination.speculation import Workspaces

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
