from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
def pg_url() -> str:
    """The test server's URL; skips (or, with ``$CI`` set, fails) when it is unreachable."""
    return postgres_test_url()


@pytest.fixture
async def pg_schema(pg_url: str) -> AsyncIterator[str]:
    """A fresh schema name, dropped after the test."""
    async with scratch_postgres_schema(pg_url) as schema:
        yield schema
