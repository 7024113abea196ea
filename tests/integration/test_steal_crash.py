"""Issue 16: kill -9 a session while idle agents steal queued work; no task is worked twice.

The child (``steal_crash_child.py``) gives six tasks to one agent of three, so the other two
claim them (the scheduler's compare-and-set claim); the parent SIGKILLs it after a random
number of committed events, resumes it (another process, the same store), kills again, and
finally lets it finish. Then, for every task: it was started once, completed once, and worked
by one agent only (the side-effect file names one agent per task).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from loomkin.core.events import TaskClaimed, TaskStatusChanged
from loomkin.persistence import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CHILD = Path(__file__).with_name("steal_crash_child.py")


async def _run(url: str, project: Path, session: str, kill_after: int | None) -> tuple[str, bool]:
    """Run the child; kill it after ``kill_after`` events (None: to the end). (session, done)"""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), url, str(project), session,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = 0
    ready = session != "-"
    done = False
    try:
        while True:
            # a wait must be able to end: a child that stops talking is killed, never waited on
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            if not line:
                break
            if line.startswith("SESSION "):
                session = line.split()[1]
            elif line.startswith("READY"):
                ready = True
            elif line.startswith("DONE"):
                done = True
                break
            elif line.startswith("EV ") and ready:
                seen += 1
                if kill_after is not None and seen >= kill_after:
                    proc.kill()
                    break
    finally:
        if proc.returncode is None and not done:
            proc.kill()
        _, err = await proc.communicate()
    if kill_after is None:
        assert done, err.decode()[-3000:]
    return session, done


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_no_task_is_worked_twice_across_kills(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    project = tmp_path / "project"
    project.mkdir()
    url = f"sqlite:///{tmp_path / 'loomkin.db'}"
    session, done = await _run(url, project, "-", rng.randint(1, 30))
    for _ in range(2):
        if done:
            break
        session, done = await _run(url, project, session, rng.randint(1, 30))
    if not done:
        session, done = await _run(url, project, session, None)
    store = await open_store(url)
    try:
        history = await store.read()
    finally:
        await store.close()
    starts: dict[str, int] = defaultdict(int)
    completions: dict[str, int] = defaultdict(int)
    for r in history:
        if isinstance(r.event, TaskStatusChanged) and r.event.status == "in_progress":
            starts[r.event.task_id] += 1
        if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed":
            completions[r.event.task_id] += 1
    assert len(completions) == 6
    assert set(completions.values()) == {1}
    assert set(starts.values()) == {1}, "a task was started twice"
    workers: dict[str, set[str]] = defaultdict(set)
    for line in (project / "worked.txt").read_text().splitlines():
        title, agent = line.split()
        workers[title].add(agent)
    assert len(workers) == 6
    assert all(len(agents) == 1 for agents in workers.values()), workers
    assert any(isinstance(r.event, TaskClaimed) for r in history)  # work was stolen
