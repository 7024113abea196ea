"""Fixtures of the cluster tests: a scratch cluster on the real NATS server, a Postgres schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.testing.cluster import nats_test_url, scratch_cluster
from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
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
