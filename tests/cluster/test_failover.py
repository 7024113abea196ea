"""Workers on the real NATS server and Postgres: placement, failover, hand-over, fencing.

These wait on the real lease TTL of the NATS server (1.5 s here), not on sleeps of their own.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.faults_child import STEPS, WORKERS
from loomkin.core.events import ControlApplied

from .coders import completed_calls, first_shell_call, side_lines

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.cluster import ClusterClient, Worker

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


async def test_a_session_runs_on_the_least_loaded_of_two_workers(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    busy = await workers(capacity=1)
    idle = await workers(capacity=100)
    session_id, worker_id = await client.start_session(str(project), "", approve_all=True)
    assert worker_id == idle.worker_id  # both host nothing: the larger capacity wins the tie
    await client.wait_done(session_id)
    assert sorted(side_lines(project)) == sorted(
        f"task-{w}-{i}" for w in WORKERS for i in range(1, STEPS + 1)
    )
    assert set((await completed_calls(client, session_id)).values()) == {1}
    await asyncio.wait_for(idle.hosting_nothing(), 30)
    assert busy.outcomes == {}
    assert idle.outcomes[session_id] == ["done"]


async def test_graceful_shutdown_hands_the_session_over_at_once(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    first = await workers(latency_s=0.05)
    session_id, _ = await client.start_session(str(project), "", approve_all=True)
    second = await workers(latency_s=0.05)
    await first_shell_call(client, session_id)
    await first.close()  # hands over: no TTL to wait for
    await client.wait_done(session_id)
    await asyncio.wait_for(second.hosting_nothing(), 30)
    placement = await client.placement(session_id)
    assert placement.hosts == (first.worker_id, second.worker_id)
    assert first.outcomes[session_id] == ["released"]
    assert second.outcomes[session_id] == ["done"]
    assert set((await completed_calls(client, session_id)).values()) == {1}
    assert len(side_lines(project)) == len(set(side_lines(project)))


async def test_a_control_reaches_an_agent_on_another_worker(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    host = await workers(latency_s=0.3)
    session_id, worker_id = await client.start_session(str(project), "", approve_all=True)
    assert worker_id == host.worker_id
    await first_shell_call(client, session_id)
    request = await client.control(session_id, "cancel", "cal")
    assert request
    with pytest.raises(Exception, match=r"(?i)agent"):
        await client.control(session_id, "pause", "nobody")
    await client.wait_done(session_id)
    assert not any(line.startswith(f"task-cal-{STEPS}") for line in side_lines(project))


async def test_a_paused_agent_keeps_its_session_hosted_until_it_is_resumed(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    host = await workers(latency_s=0.3)
    session_id, _ = await client.start_session(str(project), "", approve_all=True)
    await first_shell_call(client, session_id)
    paused = WORKERS[0]
    await client.control(session_id, "pause", paused)
    while not any(  # noqa: ASYNC110 - the log is in Postgres, read as a client would
        isinstance(r.event, ControlApplied) and r.event.action == "pause"
        for r in await client.history(session_id)
    ):
        await asyncio.sleep(0.05)
    assert f"task-{paused}-{STEPS}" not in side_lines(project)  # paused mid-work
    # The others finish their steps; the session then rests with one agent paused. Before,
    # its host marked it done at that point and a resume was refused.
    others = [w for w in WORKERS if w != paused]
    while not all(f"task-{w}-{STEPS}" in side_lines(project) for w in others):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for _ in range(40):  # two lease TTLs: longer than the host needs to see it at rest
        assert (await client.placement(session_id)).status != "done"
        await asyncio.sleep(0.075)
    assert session_id not in host.outcomes
    await client.control(session_id, "resume", paused)
    await client.wait_done(session_id)
    assert f"task-{paused}-{STEPS}" in side_lines(project)
    assert host.outcomes[session_id] == ["done"]
