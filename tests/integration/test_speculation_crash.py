"""Issue 18: a SIGKILL mid-speculation leaves a consistent state after resume.

A child process (``speculation_crash_child.py``) starts a speculation on a real git
repository, lets the speculative agent finish tentatively in its worktree, and is killed with
SIGKILL while the blocker is still being worked on. On resume:

* the worktree survived → it is re-attached; when the blocker completes with the assumed
  signature, the work is merged and the worktree removed;
* the worktree was lost → the speculation is discarded (``crashed``) and the task redone in
  the shared tree, with no branch left behind;
* a workspace no speculation owns (an orphan of a crash) is swept either way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _pipeline_models import Playbook, Turn, answered
from _speculation import SETTINGS, SIGNATURE, WRITES, git

from loomkin.core.events import SpeculationDiscarded, SpeculationMerged
from loomkin.service import Loomkin
from loomkin.testing.models import Call, Reply

pytestmark = [pytest.mark.timeout(120)]

CHILD = Path(__file__).parent / "speculation_crash_child.py"


def _run_and_kill(url: str, repo: Path) -> tuple[str, str, str]:
    with subprocess.Popen(
        [sys.executable, str(CHILD), url, str(repo)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as child:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert line[:1] == ["ready"], line
    return line[1], line[2], line[3]


async def _interface(turn: Turn) -> Reply:
    k = answered(turn)
    if k == 0:
        handoff = {"result": "interface written", "decisions": [f"signature: {SIGNATURE}"]}
        return Reply(tool_calls=[Call("task_complete", handoff)])
    return Reply(text="interface done")


async def _redo(turn: Turn) -> Reply:
    k = answered(turn)
    if k == 0:
        assert "[Redo]" in turn.brief
        content = "from api import parse\n"
        return Reply(tool_calls=[Call("file_write", {"path": "client.py", "content": content})])
    if k == 1:
        return Reply(tool_calls=[Call("task_complete", {"result": "client redone"})])
    return Reply(text="redone")


async def _resume(url: str, session_id: str) -> tuple[list, Loomkin, object]:
    book = Playbook(parts={"write the interface": _interface, "write the client": _redo})
    lk = await Loomkin.open(url)
    session = await lk.resume_session(
        session_id, model_factory=book.factory, settings=SETTINGS, policy=WRITES
    )
    await asyncio.wait_for(lk.wait_idle(), 60)
    return await session.history(), lk, session


def test_worktree_survives_the_kill_and_is_merged_after_resume(tmp_path: Path, repo: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    session_id, _t1, t2 = _run_and_kill(url, repo)
    workspace = repo / ".loomkin" / "worktrees" / t2
    assert (workspace / "client.py").exists()
    assert not (repo / "client.py").exists()  # nothing reached the shared tree
    orphan = repo / ".loomkin" / "worktrees" / "task_orphan"
    orphan.mkdir()

    async def check() -> None:
        recorded, lk, session = await _resume(url, session_id)
        async with lk:
            (merged,) = [r.event for r in recorded if isinstance(r.event, SpeculationMerged)]
            assert merged.files == ("client.py",)
            assert session.task(t2).status == "completed"  # type: ignore[attr-defined]

    asyncio.run(check())
    assert (repo / "client.py").read_text().startswith("from api import parse")
    assert not workspace.exists()
    assert not orphan.exists()
    assert list((repo / ".loomkin" / "worktrees").iterdir()) == []


def test_worktree_lost_in_the_kill_is_discarded_and_redone(tmp_path: Path, repo: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    session_id, _t1, t2 = _run_and_kill(url, repo)
    shutil.rmtree(repo / ".loomkin" / "worktrees" / t2)

    async def check() -> None:
        recorded, lk, session = await _resume(url, session_id)
        async with lk:
            (dropped,) = [r.event for r in recorded if isinstance(r.event, SpeculationDiscarded)]
            assert dropped.reason == "crashed"
            assert not [r for r in recorded if isinstance(r.event, SpeculationMerged)]
            assert session.task(t2).status == "completed"  # type: ignore[attr-defined]
            assert session.task(t2).result == "client redone"  # type: ignore[attr-defined]

    asyncio.run(check())
    assert (repo / "client.py").read_text() == "from api import parse\n"
    assert git(repo, "branch", "--list", "loomkin/*").strip() == ""
    assert "worktrees" not in git(repo, "worktree", "list")
