"""Fixtures of the cluster tests: a scratch cluster on the real NATS server, a Postgres schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.cluster import ClusterClient, Worker
from loomkin.testing.cluster import nats_test_url, scratch_cluster
from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema

from .coders import TTL, options

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path


@pytest.fixture
def bus_url() -> str:
    return nats_test_url()


@pytest.fixture
async def cluster(bus_url: str) -> AsyncIterator[str]:
    async with scratch_cluster(bus_url) as name:
        yield name


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    server = postgres_test_url()
    async with scratch_postgres_schema(server) as schema:
        yield f"{server}{'&' if '?' in server else '?'}schema={schema}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


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
