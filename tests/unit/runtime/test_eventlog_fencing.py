"""The event log carries each session's fence; a stale one fails its own calls only, for good."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.core.events import UserMessagePosted
from loomkin.errors import StaleEpoch
from loomkin.ids import MessageId, SessionId
from loomkin.persistence import MemoryStore
from loomkin.runtime import EventLog

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.events import NewEvent, RecordedEvent
    from loomkin.core.store import Fence


def msg(i: int, session: str) -> UserMessagePosted:
    return UserMessagePosted(
        session_id=SessionId(session), message_id=MessageId(f"m{i}"), text=str(i)
    )


class CountingStore(MemoryStore):
    """A memory store that records what each append was given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, tuple[Fence, ...]]] = []

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
        fences: Sequence[Fence] = (),
    ) -> list[RecordedEvent]:
        self.calls.append((len(events), tuple(fences)))
        await asyncio.sleep(0)
        return await super().append(events, expected_versions=expected_versions, fences=fences)


async def _held(
    store: CountingStore, session: str, holder: str = "me", *, take_over: bool = False
) -> Fence:
    lease = await store.acquire_lease(SessionId(session), holder, ttl_s=60, take_over=take_over)
    return lease.fence


async def test_every_append_of_a_fenced_session_carries_its_fence() -> None:
    store = CountingStore()
    fence = await _held(store, "a")
    async with EventLog(store) as log:
        log.fence(fence)
        await log.append(msg(1, "a"))
        await log.append(msg(2, "b"))  # another session: not fenced here
    assert store.calls == [(1, (fence,)), (1, ())]


async def test_a_stale_fence_fails_its_calls_alone_and_is_never_retried() -> None:
    store = CountingStore()
    stale, fresh = await _held(store, "a"), await _held(store, "b")
    fenced: list[StaleEpoch] = []
    async with EventLog(store, on_fenced=fenced.append) as log:
        log.fence(stale)
        log.fence(fresh)
        await store.acquire_lease(SessionId("a"), "them", ttl_s=60, take_over=True)
        results = await asyncio.gather(
            log.append(msg(1, "a")),
            log.append(msg(2, "b"), msg(3, "b")),
            log.append(msg(4, "a")),
            return_exceptions=True,
        )
        assert isinstance(results[0], StaleEpoch)
        assert isinstance(results[2], StaleEpoch)
        assert not isinstance(results[1], BaseException)
        assert [r.position for r in results[1]] == [1, 2]
        # One shared transaction (refused), then the rest alone; the stale calls never again.
        assert [n for n, _ in store.calls] == [4, 2]
        assert [e.session_id for e in fenced] == ["a"]  # the owner is told once
        assert log.fenced_out("a") is fenced[0]
        with pytest.raises(StaleEpoch):
            await log.append(msg(5, "a"))  # refused at once, without asking the store
        assert len(store.calls) == 2
        await log.append(msg(6, "b"))
        assert log.statistics().stale_appends == 2
    assert [r.event.session_id for r in await store.read()] == ["b", "b", "b"]


async def test_a_fresh_fence_lets_a_session_write_again() -> None:
    store = CountingStore()
    old = await _held(store, "a")
    async with EventLog(store) as log:
        log.fence(old)
        await store.acquire_lease(SessionId("a"), "them", ttl_s=60, take_over=True)
        with pytest.raises(StaleEpoch):
            await log.append(msg(1, "a"))
        log.fence(await _held(store, "a", holder="me-again", take_over=True))  # taken back
        await log.append(msg(2, "a"))
        log.unfence("a")
        await log.append(msg(3, "a"))
    assert [len(fences) for _, fences in store.calls] == [1, 1, 0]
