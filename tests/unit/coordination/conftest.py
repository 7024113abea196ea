"""A small world for coordination tests: a real session whose agents' models only say "ok".

Agents named in ``busy`` take a long (virtual) time per model call, so the tasks they are
assigned stay in progress while a test looks at what the coordination services do. Tools are
called directly, as the loop would call them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.agents.tools import CATALOGUE
from loomkin.core.chat import ToolCall, UserMessage
from loomkin.core.events import MessageSent
from loomkin.ids import TaskId, TeamId, new_id
from loomkin.service import Loomkin, Session
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import FunctionModel, Reply

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from loomkin.agents.agent import Agent
    from loomkin.agents.roles import Role
    from loomkin.agents.session import SessionRuntime
    from loomkin.core.events import JSON, Event
    from loomkin.llm.model import Model, ModelRequest

BUSY_S = 10_000.0
"""Virtual seconds a busy agent's model call takes."""
MANUAL = SessionSettings(
    bootstrap_orienter=False,
    coordination_roles=frozenset({"concierge", "orienter", "lead", "coder", "tester"}),
    stream_idle_timeout_s=10 * BUSY_S,  # a busy agent's silent model call is not a failure
)
"""The scheduler hands no task out by itself: the tests assign them."""


def _ok(_request: ModelRequest) -> Reply:
    return Reply(text="ok")


@dataclass
class World:
    """One session, its agents' models by name, and helpers to act and look."""

    lk: Loomkin
    session: Session
    models: dict[str, FunctionModel]

    @property
    def rt(self) -> SessionRuntime:
        return session_runtime(self.session)

    @property
    def root(self) -> TeamId:
        return self.rt.root_team_id

    async def team(self, name: str, parent: TeamId) -> TeamId:
        return TeamId(await self.session.create_team(name, parent=parent))

    async def agent(self, name: str, role: str = "coder", team: TeamId | None = None) -> Agent:
        member = await self.rt.teams.spawn_agent(team or self.root, name, role)
        return self.rt.agent(member.agent_id)

    async def assign(self, agent: Agent, title: str, description: str = "") -> TaskId:
        """Create a task in ``agent``'s team and assign it to ``agent``."""
        task_id = await self.session.create_task(title, description=description, team=agent.team_id)
        await self.session.assign_task(task_id, agent.agent_id, by="test")
        return TaskId(task_id)

    async def call(self, agent: Agent, tool_name: str, **args: JSON) -> str:
        """Run one tool as ``agent`` would; errors propagate as exceptions."""
        assert tool_name in agent.tools, f"{agent.role.name} lacks {tool_name}"
        tool = CATALOGUE.get(tool_name)
        ctx = agent.tool_context(ToolCall(call_id=new_id("call_"), name=tool_name, arguments=""))
        return await tool.run(tool.parse_args(json.dumps(args)), ctx, agent.ctx)

    def seen(self, name: str) -> str:
        """Every notice the agent's model was shown, de-duplicated, in order."""
        texts: list[str] = []
        model = self.models.get(name)
        for request in model.requests if model else []:
            for message in request.messages:
                if isinstance(message, UserMessage) and message.text not in texts:
                    texts.append(message.text)
        return "\n---\n".join(texts)

    async def events(self, *kinds: str) -> list[Event]:
        recorded = await self.session.history()
        return [r.event for r in recorded if not kinds or r.event.kind in kinds]

    async def messages(self, msg_type: str | None = None) -> list[MessageSent]:
        sent = [e for e in await self.events("message_sent") if isinstance(e, MessageSent)]
        return [m for m in sent if msg_type is None or m.msg_type == msg_type]


async def open_world(
    lk: Loomkin,
    project: Path,
    *,
    busy: frozenset[str] = frozenset(),
    settings: SessionSettings | None = None,
) -> World:
    """Open a session; agents named in ``busy`` take ``BUSY_S`` per model call."""
    models: dict[str, FunctionModel] = {}

    def factory(_role: Role, name: str) -> Model:
        if name not in models:
            latency = BUSY_S if name in busy else 0.0
            models[name] = FunctionModel(_ok, name=f"function:{name}", latency_s=latency)
        return models[name]

    session = await lk.open_session(
        project,
        model_factory=factory,
        settings=settings or MANUAL,
    )
    return World(lk=lk, session=session, models=models)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("def hello() -> str:\n    return 'hello'\n")
    return root


@pytest.fixture
async def lk() -> AsyncIterator[Loomkin]:
    async with await Loomkin.open("memory:") as runtime:
        yield runtime
