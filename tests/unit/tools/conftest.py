from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from loomkin.ids import AgentId, CallId, SessionId, TeamId
from loomkin.tools.base import ToolContext
from loomkin.tools.builtin import BuiltinDeps, Sandbox

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


# One sandbox for the whole run: whether bubblewrap works is probed once and cached.
_BWRAP = Sandbox()


async def require_bwrap() -> Sandbox:
    """The real bubblewrap sandbox; skips without it, but fails under CI (a skip hides a bug)."""
    if not await _BWRAP.available():
        reason = _BWRAP.unavailable_reason
        if os.environ.get("CI"):  # CI installs bubblewrap (scripts/test.sh)
            pytest.fail(f"CI is set but the bubblewrap sandbox does not work: {reason}")
        pytest.skip(f"needs a working bubblewrap sandbox: {reason}")
    return _BWRAP


@pytest.fixture
async def bwrap() -> Sandbox:
    return await require_bwrap()


@pytest.fixture(params=["bwrap", "guard-only"])
async def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Each test twice: in bubblewrap, and in the fallback where only the guard protects."""
    if request.param == "bwrap":
        return await require_bwrap()
    return Sandbox(bwrap=None, announce=False)
