from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.ids import AgentId, CallId, SessionId, TeamId
from loomkin.tools.base import ToolContext
from loomkin.tools.builtin import BuiltinDeps

if TYPE_CHECKING:
    from pathlib import Path


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
