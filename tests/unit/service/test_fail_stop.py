"""A projection that raises stops the runtime instead of drifting from the log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.events import MessageSent, RecordedEvent
from loomkin.errors import ProjectionFailed
from loomkin.service import Loomkin
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path


async def test_a_failing_projection_halts_the_runtime_naming_itself_and_the_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ScriptedModel([Reply(text="hello")] * 3)
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            tmp_path,
            model_factory=lambda _r, _n: model,
            settings=SessionSettings(bootstrap_orienter=False),
        )
        await session.spawn_agent("alice", "coder")
        router = session_runtime(session).router
        apply = router.apply

        def broken(recorded: RecordedEvent, *, live: bool) -> None:
            if isinstance(recorded.event, MessageSent):
                raise RuntimeError("router bug")
            apply(recorded, live=live)

        monkeypatch.setattr(router, "apply", broken)
        with pytest.raises(ProjectionFailed) as failed:
            await session.send("hi", to="alice")
        assert failed.value.projection == "router"
        assert "router bug" in str(failed.value)
        position = failed.value.position
        # The message is in the log (it was committed), and nothing else is accepted.
        assert any(r.position == position for r in await session.history())
        with pytest.raises(ProjectionFailed):
            await session.send("again", to="alice")
        with pytest.raises(ProjectionFailed):
            await session.wait_idle()
        with pytest.raises(ProjectionFailed):
            await lk.wait_idle()
    assert model.requests == []  # no agent worked on a state that drifted from the log
