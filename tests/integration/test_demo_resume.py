"""Kill the demo mid-run with SIGKILL, then `loomkin resume` finishes it without repeating work."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from loomkin.core.events import ToolCallCompleted, ToolCallStarted
from loomkin.persistence import SqliteStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ENV = {"COLUMNS": "200", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin:/usr/local/bin"}


def _kill_after(project: Path, marker: str) -> str:
    """Run the demo until ``marker`` is printed, then SIGKILL it; return what it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loomkin.cli", "demo", "--project", str(project), "--pace", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**ENV, "HOME": str(project.parent)},
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    proc.stdout.close()
    return "".join(seen)


@pytest.mark.parametrize(
    "marker",
    [
        "file_edit greetings/core.py",  # not idempotent: reported interrupted, the agent retries
        "file_write greetings/farewell.py",  # idempotent: the runtime runs it again
    ],
)
def test_resume_after_kill_completes_the_demo_and_runs_no_tool_twice(
    tmp_path: Path, marker: str
) -> None:
    project = tmp_path / "sample"
    before = _kill_after(project, marker)
    assert "All done" not in before
    result = subprocess.run(
        [sys.executable, "-m", "loomkin.cli", "resume", "--project", str(project), "--yes"],
        capture_output=True,
        text=True,
        timeout=100,
        env={**ENV, "HOME": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed" in result.stdout
    assert "tasks: 3 completed" in result.stdout
    # The work is really done, and the summary says only what a completed write changed.
    greetings = project / "greetings"
    assert "shout: bool = False" in (greetings / "core.py").read_text()
    assert "def farewell" in (greetings / "farewell.py").read_text()
    assert (project / "tests" / "test_new.py").exists()
    changed = next(line for line in result.stdout.splitlines() if "files changed:" in line)
    for name in ("greetings/farewell.py", "greetings/__init__.py", "tests/test_new.py"):
        assert name in changed
    started, completed, reruns = asyncio.run(_count_tool_calls(project))
    assert started
    assert all(n == 1 for n in started.values()), "a tool call attempt started twice"
    assert all(n == 1 for n in completed.values()), "a tool call completed twice"
    assert all(tool in {"file_read", "file_write", "directory_list", "git"} for tool in reruns)


async def _count_tool_calls(
    project: Path,
) -> tuple[dict[tuple[str, int], int], dict[str, int], list[str]]:
    store = await SqliteStore.open(project / ".loomkin" / "loomkin.db")
    try:
        events = await store.read()
    finally:
        await store.close()
    started: collections.Counter[tuple[str, int]] = collections.Counter()
    completed: collections.Counter[str] = collections.Counter()
    reruns: list[str] = []
    for recorded in events:
        event = recorded.event
        if isinstance(event, ToolCallStarted):
            started[(event.call_id, event.attempt)] += 1
            if event.attempt > 1:
                reruns.append(event.tool)
        elif isinstance(event, ToolCallCompleted):
            completed[event.call_id] += 1
    return dict(started), dict(completed), reruns
