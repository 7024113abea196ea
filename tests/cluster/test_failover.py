"""Workers on the real NATS server and Postgres: placement, failover, hand-over, fencing.

These wait on the real lease TTL of the NATS server (1 s here), not on sleeps of their own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.faults_child import SETTINGS, STEPS, WORKERS, ensure_work
from loomkin.cluster import ClusterClient, HostOptions, Worker
from loomkin.core.events import ToolCallCompleted, ToolCallStarted
from loomkin.testing.models import FunctionModel
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from loomkin.llm.model import Model

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

TTL = 1.5


def slow_factory(latency_s: float) -> Callable[[object, str], Model]:
    from loomkin.bench.faults_child import coder

    def factory(_role: object, name: str) -> Model:
        return FunctionModel(coder, name=f"scripted:{name}", latency_s=latency_s)

    return factory


def options(pg_url: str, latency_s: float = 0.0) -> HostOptions:
    return HostOptions(
        store_url=pg_url,
        ttl_s=TTL,
        model_factory=slow_factory(latency_s),
        settings=SETTINGS,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=ensure_work,
    )


@pytest.fixture
async def workers(
    bus_url: str, cluster: str, pg_url: str
) -> AsyncIterator[Callable[..., asyncio.Future[Worker]]]:
    started: list[Worker] = []

    async def start(latency_s: float = 0.0, capacity: int = 100) -> Worker:
        worker = Worker(
            bus_url, options(pg_url, latency_s), cluster=cluster, capacity=capacity, scan_s=0.2
        )
        await worker.start()
        started.append(worker)
        return worker

    yield start  # type: ignore[misc]
    for worker in started:
        await worker.close()


@pytest.fixture
async def client(bus_url: str, cluster: str, pg_url: str) -> AsyncIterator[ClusterClient]:
    async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
        yield c


async def first_shell_call(client: ClusterClient, session_id: str) -> None:
    """Follow the session until a shell call starts, closing the follow (and its NATS
    subscription) here rather than whenever the abandoned generator is collected."""
    async with contextlib.aclosing(client.follow(session_id)) as events:
        async for recorded in events:
            if isinstance(recorded.event, ToolCallStarted) and recorded.event.tool == "shell":
                return


def side_lines(project: Path) -> list[str]:
    side = project / "side.txt"
    return side.read_text().split() if side.exists() else []


async def completed_calls(client: ClusterClient, session_id: str) -> collections.Counter[str]:
    """How many times each tool call completed (every call id must be once)."""
    done: collections.Counter[str] = collections.Counter()
    for recorded in await client.history(session_id):
        if isinstance(recorded.event, ToolCallCompleted):
            done[recorded.event.call_id] += 1
    return done


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
