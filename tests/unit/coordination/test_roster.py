"""The roster's direct lookup by agent id gives the same record as the full member list."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .conftest import open_world

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime


async def test_member_by_id_is_the_member_listed_without_building_the_others(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await open_world(lk, project)
    await world.agent("lead", "lead")
    alice = await world.agent("alice")
    roster = world.rt.directory
    listed = {m.agent_id: m for m in roster.members()}

    def no_scan() -> None:
        raise AssertionError("members() rebuilds every member")

    monkeypatch.setattr(roster, "members", no_scan)
    ctx = world.rt.coordination.ctx
    assert ctx.member(alice.agent_id) == listed[alice.agent_id]
    assert ctx.member("agent_nobody") is None
    assert ctx.member(None) is None
