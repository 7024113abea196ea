"""A cancel that lands with a wake-up stops the autoscaler's loop (issue 16).

On Python 3.11, ``asyncio.wait_for`` with a timeout returns the result of what it waits for,
and drops the cancel, when the cancel arrives in the loop turns between the awaited thing
finishing and the waiter resuming. The autoscaler waited for its wake-up that way; closing a
runtime both cancels it and wakes it (the agents it stops change status), so now and then the
cancel was lost, the loop went back to waiting, and the close waited for it for ever (once in
about ten runs of the resume test).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.coordination.autoscale import AutoscaleSettings
from loomkin.service import Loomkin
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

SETTINGS = SessionSettings(
    bootstrap_orienter=False,
    autoscale=AutoscaleSettings(enabled=True, window_s=1000, cooldown_s=0, max_agents=2),
)


@pytest.mark.parametrize("turns", range(5))
async def test_a_cancel_that_lands_with_a_wake_up_stops_the_autoscaler(
    project: Path, turns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            project,
            model_factory=lambda _role, name: ScriptedModel([], name=f"scripted:{name}"),
            settings=SETTINGS,
        )
        scaler = session_runtime(session).autoscaler
        # A team with a deadline ahead (a window running): the wait has a timeout.
        monkeypatch.setattr(scaler, "_next_deadline", lambda: 100.0)
        loop = asyncio.create_task(scaler.run_forever())
        await asyncio.sleep(0)
        scaler._wakeup.set()  # what a live event that concerns scaling does
        for _ in range(turns):  # the cancel lands at each point of the wake-up in turn
            await asyncio.sleep(0)
        loop.cancel()
        async with asyncio.timeout(5):  # virtual: a lost cancel fails here instead of hanging
            await asyncio.wait([loop])
        assert loop.cancelled()
