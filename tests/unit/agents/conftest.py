"""Fixtures and helpers for the agent loop tests: a project, a runtime and event waiters."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.agents.agent import Agent
from loomkin.core.events import AgentEvent, Event
from loomkin.llm.model import Model
from loomkin.service import Loomkin, Session
from loomkin.testing.internals import live_agent
from loomkin.testing.models import ScriptedModel
from loomkin.tools.base import ToolArgs, ToolContext, ToolSet, tool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from loomkin.agents.context import AgentContext
    from loomkin.agents.roles import Role
    from loomkin.core.events import RecordedEvent
    from loomkin.tools.base import Tool
    from loomkin.tools.permissions import PermissionPolicy


def git_project(root: Path) -> Path:
    """Make ``root`` a small git project with one committed file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("# sample\n")
    (root / "app.py").write_text("def hello() -> str:\n    return 'hello'\n")
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-C", str(root)]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "initial"], check=True)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return git_project(tmp_path / "project")


@pytest.fixture
async def lk() -> AsyncIterator[Loomkin]:
    async with await Loomkin.open("memory:") as runtime:
        yield runtime


@dataclass
class Rig:
    """One session with one worker agent driven by ``model``."""

    lk: Loomkin
    session: Session
    agent: Agent
    model: Model

    async def events(self, *kinds: str) -> list[Event]:
        """This session's events (of ``kinds`` when given), oldest first."""
        return of_kinds(await self.session.history(), *kinds)

    async def agent_events(self, *kinds: str) -> list[Event]:
        """The worker's own events (of ``kinds`` when given)."""
        return [
            e
            for e in await self.events(*kinds)
            if isinstance(e, AgentEvent) and e.agent_id == self.agent.agent_id
        ]

    async def wait_for(
        self, kind: str, where: Callable[[Event], bool] = lambda _e: True, *, after: int = 0
    ) -> Event:
        """Wait (on the log, not on a clock) for the first event of ``kind`` matching ``where``."""
        return await wait_for(self.lk, self.session.session_id, kind, where, after=after)

    async def send(self, text: str) -> None:
        await self.session.send(text, to=self.agent.name)


def nth_match(n: int, where: Callable[[Event], bool] = lambda _e: True) -> Callable[[Event], bool]:
    """A predicate true for the ``n``-th event (1-based) that matches ``where``."""
    seen = 0

    def check(event: Event) -> bool:
        nonlocal seen
        if where(event):
            seen += 1
        return seen == n

    return check


def of_kinds(recorded: list[RecordedEvent], *kinds: str) -> list[Event]:
    events = [r.event for r in recorded]
    return [e for e in events if not kinds or e.kind in kinds]


async def wait_for(
    lk: Loomkin,
    session_id: str,
    kind: str,
    where: Callable[[Event], bool] = lambda _e: True,
    *,
    after: int = 0,
) -> Event:
    """Return the first event of ``kind`` (after position ``after``) that matches ``where``."""
    async with lk.events(session_id, after=after) as sub:
        async for recorded in sub:
            if recorded.event.kind == kind and where(recorded.event):
                return recorded.event
    raise AssertionError(f"the log ended before a {kind!r} event")


async def make_rig(
    lk: Loomkin,
    project: Path,
    model: Model,
    *,
    role: str = "coder",
    name: str = "worker",
    settings: SessionSettings | None = None,
    policy: PermissionPolicy | None = None,
) -> Rig:
    """Open a session on ``project`` whose agent ``name`` (``role``) uses ``model``."""

    def factory(r: Role, agent_name: str) -> Model:
        return model if agent_name == name else ScriptedModel([], name="scripted:idle")

    session = await lk.open_session(
        project,
        model_factory=factory,
        settings=settings or SessionSettings(bootstrap_orienter=False),
        policy=policy,
    )
    await session.spawn_agent(name, role)
    agent = live_agent(session, name)
    return Rig(lk=lk, session=session, agent=agent, model=model)


class GateArgs(ToolArgs):
    """Arguments of the test-only ``gate`` tool."""

    label: str = "gate"


class Gate:
    """A test tool that runs until the test opens it (a tool "in flight" for as long as needed)."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.runs: list[str] = []

    def tool(self) -> Tool[AgentContext]:
        @tool(name="gate", category="read", args=GateArgs, description="Wait for the gate.")
        async def gate(args: GateArgs, ctx: ToolContext, deps: AgentContext) -> str:
            self.runs.append(args.label)
            await self.opened.wait()
            return f"gate {args.label} passed"

        return gate

    def install(self, agent: Agent) -> None:
        agent.tools = agent.tools.union(ToolSet([self.tool()]))
