"""Fixtures of the integration tests: a store URL on each backend that persists."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from _speculation import git_project

from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory."""
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed git project (a README and a placeholder ``api.py``)."""
    return git_project(tmp_path / "project")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh store that outlives a runtime: a SQLite file, or a Postgres schema.

    The Postgres case fails (not skips) under ``CI=true`` when the server is missing.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loomkin.db'}"
        return
    server = postgres_test_url()
    async with scratch_postgres_schema(server) as schema:
        yield f"{server}{'&' if '?' in server else '?'}schema={schema}"
