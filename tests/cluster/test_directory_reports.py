"""A worker's directory entry is kept by the lease keeper's thread, not by its busy loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import pytest

from loomkin.cluster import HostOptions, Worker
from loomkin.cluster.bus import connect, open_buckets
from loomkin.cluster.directory import WorkerDirectory
from loomkin.cluster.names import ClusterNames
from loomkin.cluster.placement import WorkerLoad

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

TTL = 1.5
STORE = "postgresql://127.0.0.1:5432/test"
"""Never connected to: these workers host no session."""


async def live_workers(bus_url: str, cluster: str) -> list[WorkerLoad]:
    nc = await connect(bus_url)
    try:
        buckets = await open_buckets(nc.jetstream(), ClusterNames(cluster), ttl_s=TTL)
        return await WorkerDirectory(buckets.workers).live()
    finally:
        await nc.close()


def live_workers_after(bus_url: str, cluster: str, delay_s: float) -> list[WorkerLoad]:
    """The directory as another process sees it ``delay_s`` from now (run in a thread)."""
    time.sleep(delay_s)
    return asyncio.run(live_workers(bus_url, cluster))


async def test_a_worker_whose_loop_is_blocked_longer_than_the_ttl_stays_in_the_directory(
    bus_url: str, cluster: str
) -> None:
    node = Worker(bus_url, HostOptions(store_url=STORE, ttl_s=TTL), cluster=cluster, capacity=7)
    await node.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # This loop (the worker's) is blocked for three TTLs, as by a long synchronous
            # replay, and the directory is read from another thread before it runs again.
            live = pool.submit(live_workers_after, bus_url, cluster, 3 * TTL).result()
    finally:
        await node.close()
    assert live == [
        WorkerLoad(worker_id=node.worker_id, agents=0, sessions=0, capacity=7, accepting=True)
    ]
    assert await live_workers(bus_url, cluster) == []  # it left, and no late report brings it back
