"""An agent's answer is visible while it streams (the web app's cards show it)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.service import Loomkin
from loomkin.testing.models import Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.looptime

ANSWER = "Here is a long answer that streams in five-character chunks, one a second."


async def test_streaming_text_grows_during_the_call_and_clears_after(tmp_path: Path) -> None:
    model = ScriptedModel([Reply(text=ANSWER)], chunk_chars=5, chunk_delay_s=1.0)
    async with await Loomkin.open("memory:") as loomkin:
        session = await loomkin.open_session(
            tmp_path, model=model, settings=SessionSettings(bootstrap_orienter=False)
        )
        await session.send("hello")
        seen: list[str] = []
        for _ in range(40):
            await asyncio.sleep(1)  # virtual
            text = session.agent("concierge").streaming_text
            if text:
                seen.append(text)
        assert len(seen) >= 3
        assert all(ANSWER.startswith(t) for t in seen)
        assert len(seen[-1]) > len(seen[0])
        await session.wait_idle()
        assert session.agent("concierge").streaming_text == ""
