from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.ids import AgentId, CallId, SessionId, TeamId
from loomkin.tools.base import ToolContext
from loomkin.tools.builtin import BuiltinDeps

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="session", autouse=True)
def _no_implicit_event_loop() -> None:
    # pytest-asyncio 1.x asks for "the current loop" before each async test; on Python 3.11
    # that call creates (and leaks) a loop when none was ever set, which filterwarnings=error
    # turns into a failure once a sync test ran first. Setting "no loop" makes the call raise
    # instead, which pytest-asyncio handles. Belongs in tests/conftest.py for the whole suite.
    asyncio.set_event_loop(None)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root


def make_ctx(root: Path, agent: str = "a1") -> ToolContext:
    return ToolContext(
        project_root=root,
        agent_id=AgentId(agent),
        agent_name="coder",
        team_id=TeamId("t1"),
        session_id=SessionId("s1"),
        call_id=CallId("c1"),
    )


@pytest.fixture
def ctx(project: Path) -> ToolContext:
    return make_ctx(project)


@pytest.fixture
def deps() -> BuiltinDeps:
    return BuiltinDeps()
