"""Test helpers for the cluster: the NATS server the tests use, and scratch clusters.

Like PostgreSQL, the NATS server is real (127.0.0.1:4222 with JetStream, or
``$LOOMKIN_TEST_NATS_URL``); a test that needs it is skipped with the reason when it does not
answer, except under ``CI``, where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import unittest
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from loomkin.cluster.bus import connect
from loomkin.cluster.names import ClusterNames

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client

    from loomkin.agents.settings import SessionSettings
    from loomkin.cluster.agents import AgentPlacer
    from loomkin.cluster.executor import AgentExecutor
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import ModelFactory

__all__ = ["ExecutorRig", "executor_rig", "nats_test_url", "scratch_cluster", "streamed_text"]

NATS_DEFAULT = "nats://127.0.0.1:4222"


@functools.cache
def _probe_nats() -> tuple[str | None, str]:
    url = os.environ.get("LOOMKIN_TEST_NATS_URL") or NATS_DEFAULT
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 4222), timeout=3):
            return url, ""
    except OSError as exc:
        return None, f"{url}: {exc}"


def nats_test_url() -> str:
    """Return the URL of the test NATS server, or skip the calling test (fail under ``CI``).

    Raises:
        unittest.SkipTest: no server answers and ``$CI`` is not set.
        AssertionError: no server answers and ``$CI`` is set.
    """
    url, why = _probe_nats()
    if url is not None:
        return url
    if os.environ.get("CI"):
        raise AssertionError(f"CI is set but the NATS server is unreachable: {why}")
    raise unittest.SkipTest(f"the NATS server is unreachable ({why})")


@contextlib.asynccontextmanager
async def scratch_cluster(url: str | None = None) -> AsyncIterator[str]:
    """Yield a fresh cluster name; delete its buckets at exit."""
    server = url or nats_test_url()
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        names = ClusterNames(name)
        nc = await connect(server)
        try:
            js = nc.jetstream()
            for bucket in (names.workers_bucket, names.leases_bucket, names.placements_bucket):
                with contextlib.suppress(Exception):  # never created: nothing to delete
                    await js.delete_key_value(bucket)
        finally:
            await nc.close()


class ExecutorRig:
    """One worker's executor on a NATS server and one host's placer that sends it calls."""

    def __init__(
        self,
        executor: AgentExecutor,
        placer: AgentPlacer,
        nc: Client,
        placed: list[tuple[str, str, int, str]],
        reports: asyncio.Task[None],
    ) -> None:
        self.executor = executor
        self.placer = placer
        self.nc = nc
        self.placed = placed
        """``(agent, worker, epoch, reason)`` of every placement, as a host would journal it."""
        self._reports = reports

    async def stop_reporting(self) -> None:
        """The worker's directory reports stop (its agents' leases are still renewed).

        Its entry expires after the TTL, and hosts no longer hear from it.
        """
        self._reports.cancel()
        await asyncio.wait({self._reports})


@contextlib.asynccontextmanager
async def executor_rig(
    bus_url: str,
    cluster: str,
    *,
    ttl_s: float,
    model_factory: ModelFactory,
    settings: SessionSettings,
    worker_id: str = "rig-worker",
    session_id: str = "session_rig",
) -> AsyncIterator[ExecutorRig]:
    """An :class:`ExecutorRig` without a session or a store (the wire and the worker's side).

    The executor's worker reports itself in the directory every third of the TTL, as a
    worker does, so the placer finds it live. Everything is closed at exit.
    """
    from loomkin.cluster.agents import AgentPlacer
    from loomkin.cluster.bus import open_buckets
    from loomkin.cluster.directory import WorkerDirectory
    from loomkin.cluster.executor import AgentExecutor
    from loomkin.cluster.hosting import HostOptions
    from loomkin.cluster.keeper import LeaseKeeper
    from loomkin.cluster.leases import BusLeases
    from loomkin.cluster.placement import WorkerLoad

    names = ClusterNames(cluster)
    options = HostOptions(store_url="", ttl_s=ttl_s, model_factory=model_factory, settings=settings)
    nc = await connect(bus_url, name=worker_id)
    keeper = LeaseKeeper(bus_url, names, worker_id, ttl_s=ttl_s)
    await keeper.start()
    executor: AgentExecutor | None = None
    reports: asyncio.Task[None] | None = None
    try:
        buckets = await open_buckets(nc.jetstream(), names, ttl_s=ttl_s)
        executor = AgentExecutor(
            nc=nc,
            names=names,
            worker_id=worker_id,
            leases=BusLeases(buckets.leases, worker_id),
            keeper=keeper,
            options=options,
        )
        await executor.start()
        directory = WorkerDirectory(buckets.workers)
        await directory.follow(nc, names.every_worker_report)  # as a worker's hosts do
        await directory.report(WorkerLoad(worker_id=worker_id), host="rig", pid=0)

        async def report(executor: AgentExecutor) -> None:  # its entry lives a TTL
            while True:
                await asyncio.sleep(ttl_s / 3)
                load = WorkerLoad(worker_id=worker_id, agents=executor.agents())
                await directory.report(load, host="rig", pid=0)

        reports = asyncio.get_running_loop().create_task(report(executor))
        placed: list[tuple[str, str, int, str]] = []

        async def journal(agent_id: str, worker: str, epoch: int, reason: str) -> None:
            placed.append((agent_id, worker, epoch, reason))

        placer = AgentPlacer(
            nc=nc,
            names=names,
            leases=BusLeases(buckets.leases, f"{worker_id}-host"),
            directory=directory,
            session_id=session_id,
            project="/",
            ttl_s=ttl_s,
            on_placed=journal,
        )
        yield ExecutorRig(executor, placer, nc, placed, reports)
    finally:
        if reports is not None:
            reports.cancel()
            await asyncio.wait({reports})
        if executor is not None:
            await executor.close()
        await keeper.close()
        await nc.close()


async def streamed_text(model: Model, request: ModelRequest) -> str:
    """The text of ``model``'s whole answer to ``request`` (streamed, then built)."""
    from loomkin.llm.model import ResponseBuilder

    builder = ResponseBuilder()
    async with contextlib.aclosing(model.stream(request)) as events:  # type: ignore[type-var]
        async for event in events:
            builder.add(event)
    return builder.build().text
