"""Messages an agent had not read when the process stopped reach it after the restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.chat import UserMessage
from loomkin.service import Loomkin
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model


async def test_unread_team_and_direct_messages_are_delivered_after_a_restart(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    project.mkdir()
    store = f"sqlite:///{tmp_path / 's.db'}"
    settings = SessionSettings(bootstrap_orienter=False)
    first = ScriptedModel([Reply(text="first answer")])
    async with await Loomkin.open(store) as lk:
        session = await lk.open_session(
            project, model_factory=lambda _r, _n: first, settings=settings
        )
        await session.create_team("crew")
        await session.spawn_agent("ann", "coder", team="crew")
        await session.spawn_agent("ben", "coder", team="crew")
        await session.pause("ann")  # ann is idle: paused at once, so she reads nothing
        runtime = session_runtime(session)
        ben = runtime.agent("ben")
        crew = runtime.resolve_team("crew")
        messages = runtime.ctx.messages
        await runtime.ctx.log.append(
            messages.message("peer_message", "to the whole crew", to_team=crew, sender=ben),
            messages.message(
                "peer_message",
                "just for ann",
                to_agent=runtime.agent("ann").agent_id,
                sender=ben,
            ),
        )
        session_id = session.session_id
        await lk.wait_idle()
    second = ScriptedModel([Reply(text="got them")])

    def factory(_role: Role, name: str) -> Model:
        return second if name == "ann" else ScriptedModel([Reply(text="ben is done")])

    async with await Loomkin.open(store) as lk:
        session = await lk.resume_session(session_id, model_factory=factory, settings=settings)
        assert {a.name: a.status for a in session.agents()}["ann"] == "paused"
        await session.resume("ann")
        await session.wait_idle()
    texts = [m.text for m in second.requests[0].messages if isinstance(m, UserMessage)]
    assert any("to the whole crew" in t for t in texts)
    assert any("just for ann" in t for t in texts)
