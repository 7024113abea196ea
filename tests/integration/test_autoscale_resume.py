"""The autoscaler after a restart (issue 16): its memory is the log's, on SQLite and Postgres.

A session grows its team, the process stops mid-work, and another runtime resumes it from
the store: the bounds and the agents it spawned are replayed, so the team never grows past
its ceiling across the restart, and every task is done once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.bench.swarm import WorkModel
from loomkin.bench.workloads import TaskSpec
from loomkin.coordination.autoscale import AutoscaleSettings
from loomkin.core.events import AgentSpawned, ScaleDecided, TaskCreated, TaskStatusChanged
from loomkin.ids import TaskId
from loomkin.service import Loomkin

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.core.events import RecordedEvent
    from loomkin.llm.model import Model
    from loomkin.service import Session

pytestmark = pytest.mark.timeout(90)

SETTINGS = SessionSettings(
    bootstrap_orienter=False,
    autoscale=AutoscaleSettings(
        enabled=True, window_s=0.01, cooldown_s=0, max_agents=3, retire_after_s=1000
    ),
)
TASKS = 6


def _factory(specs: dict[TaskId, TaskSpec]) -> Callable[[Role, str], Model]:
    def make(_role: Role, _name: str) -> Model:
        return WorkModel(specs, onboarding_s=0.05)

    return make


async def _until(session: Session, done: Callable[[list[RecordedEvent]], bool]) -> None:
    """Follow the session's log (from its start) until ``done`` holds of what it holds."""
    seen: list[RecordedEvent] = []
    async with asyncio.timeout(30), session.events() as events:
        async for recorded in events:
            seen.append(recorded)
            if done(seen):
                return
    raise AssertionError("the session's log closed before it got there")


def _completed(history: list[RecordedEvent]) -> int:
    return sum(
        1
        for r in history
        if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
    )


async def test_the_autoscaler_resumes_from_the_log(store_url: str, project: Path) -> None:
    specs: dict[TaskId, TaskSpec] = {}
    async with await Loomkin.open(store_url) as lk:
        session = await lk.open_session(project, model_factory=_factory(specs), settings=SETTINGS)
        await session.scale_team(max_agents=2)  # a lead's bound: must survive the restart
        await session.spawn_agent("worker", "coder")
        for k in range(TASKS):
            title = f"part{k}"
            task_id = TaskId(await session.create_task(title, work_s=0.3))
            specs[task_id] = TaskSpec(id=title, role="coder", work_s=0.3)
        await _until(session, lambda h: any(isinstance(r.event, ScaleDecided) for r in h))
        session_id = session.session_id
    # the process stops mid-work; another runtime resumes the session from the store
    async with await Loomkin.open(store_url) as lk:
        resumed = await lk.resume_session(
            session_id, model_factory=_factory(specs), settings=SETTINGS
        )
        for r in await resumed.history():  # the model needs the task specs by board id
            if isinstance(r.event, TaskCreated):
                specs.setdefault(
                    r.event.task_id,
                    TaskSpec(id=r.event.title, role="coder", work_s=r.event.work_s),
                )
        await _until(resumed, lambda h: _completed(h) >= TASKS)
        info = resumed.team_scale()
        log = await resumed.history()
    workers = [r.event for r in log if isinstance(r.event, AgentSpawned)]
    assert len(workers) <= 2  # the bound held across the restart (1 worker + 1 spawned)
    assert info.max_agents == 2
    spawned = [a for r in log if isinstance(r.event, ScaleDecided) for a in r.event.agent_ids]
    assert info.spawns == len(spawned) == len(workers) - 1
    done = [
        r.event.task_id
        for r in log
        if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
    ]
    assert sorted(done) == sorted(specs)  # each task completed once
