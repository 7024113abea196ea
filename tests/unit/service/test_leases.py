"""Session leases in virtual time: renewed while hosted, and losing one stops the session."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.errors import LeaseHeld, StaleEpoch, UserError
from loomkin.ids import SessionId
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


async def test_a_hosted_sessions_lease_is_renewed_past_its_ttl(tmp_path: Path) -> None:
    store = _Shared()
    first = await Loomkin.open(store, lease_ttl_s=3.0)
    session = await first.open_session(tmp_path, model_factory=_idle, settings=SETTINGS)
    await asyncio.sleep(30)  # virtual: ten TTLs
    lease = await store.current_lease(SessionId(session.session_id))
    assert lease is not None
    assert lease.epoch == 1
    assert lease.expires_at >= lease.since + 29  # renewed all along (since stays)
    second = await Loomkin.open(store, lease_ttl_s=3.0)
    try:
        with pytest.raises(LeaseHeld):
            await second.resume_session(session.session_id, model_factory=_idle)
    finally:
        await second.close()
        await first.close()


async def test_a_renewal_that_finds_the_session_taken_stops_it_here(tmp_path: Path) -> None:
    store = _Shared()
    lk = await Loomkin.open(store, lease_ttl_s=3.0)
    try:
        session = await lk.open_session(tmp_path, model_factory=_idle, settings=SETTINGS)
        other = await lk.open_session(tmp_path, model_factory=_idle, settings=SETTINGS)
        await store.acquire_lease(
            SessionId(session.session_id), "another-process", ttl_s=3.0, take_over=True
        )
        await asyncio.sleep(1.5)  # the next renewal (every TTL/3) is refused
        with pytest.raises(StaleEpoch, match="another-process"):
            await session.wait_idle()
        with pytest.raises(StaleEpoch):
            await session.send("hello")
        assert session.lease() is None
        await other.send("hello")  # the runtime's other sessions go on
        await other.wait_idle()
    finally:
        await lk.close()


def test_a_lease_ttl_must_be_positive() -> None:
    with pytest.raises(UserError, match="TTL"):
        Loomkin(MemoryStore(), lease_ttl_s=0)
