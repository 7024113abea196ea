"""A runtime that only watches a shared store sees what another runtime commits, on ``pull``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.persistence import MemoryStore
from loomkin.service import Loomkin
from loomkin.testing.models import ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.looptime

SETTINGS = SessionSettings(bootstrap_orienter=False)


def _idle(_role: object, _name: str) -> ScriptedModel:
    return ScriptedModel([])


class _Shared(MemoryStore):
    """A memory store two runtimes can share (each would close it)."""

    async def close(self) -> None:
        """Stays open: the test owns it."""


async def test_a_watching_runtime_folds_in_sessions_agents_and_events_of_another(
    tmp_path: Path,
) -> None:
    store = _Shared()
    async with await Loomkin.open(store) as watcher, await Loomkin.open(store) as host:
        assert await watcher.pull() == []
        session = await host.open_session(tmp_path, model_factory=_idle, settings=SETTINGS)
        with pytest.raises(Exception, match="no session"):
            watcher.stored_session(session.session_id)
        pulled = await watcher.pull()
        assert [r.position for r in pulled] == list(range(1, host.last_position + 1))
        assert watcher.last_position == host.last_position
        stored = watcher.stored_session(session.session_id)
        assert not stored.open  # watched, not hosted
        async with watcher.events(session.session_id, after=watcher.last_position) as events:
            await session.spawn_agent("ann", "coder")
            assert await watcher.pull()
            async for spawned in events:  # the live stream gets what was pulled
                if spawned.event.kind == "agent_spawned":
                    break
        assert "ann" in {a.name for a in watcher.stored_agents(session.session_id)}
        names = watcher.names().agent(str(spawned.event.agent_id))  # type: ignore[attr-defined]
        assert names is not None
        assert names.name == "ann"
        assert await watcher.pull() == []  # nothing new: nothing dispatched twice
