"""Giving a key-value lease back on the real NATS server, also with a stale revision."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.cluster.bus import connect, open_buckets
from loomkin.cluster.leases import BusLeases
from loomkin.cluster.names import ClusterNames

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.js.kv import KeyValue

TTL = 60.0
"""Long: no key expires while a test runs (expiry is not what these test)."""


@pytest.fixture
async def kv(bus_url: str, cluster: str) -> AsyncIterator[KeyValue]:
    nc = await connect(bus_url)
    try:
        buckets = await open_buckets(nc.jetstream(), ClusterNames(cluster), ttl_s=TTL)
        yield buckets.leases
    finally:
        await nc.close()


async def test_a_lease_whose_renewal_reply_was_lost_is_given_back_at_once(kv: KeyValue) -> None:
    mine, other = BusLeases(kv, "w1"), BusLeases(kv, "w2")
    lease = await mine.acquire("s1")
    assert lease is not None
    renewed = await mine.heartbeat(lease, epoch=4)
    # The renewal landed but its reply was lost: the holder still knows the old revision.
    assert renewed.revision > lease.revision
    assert await mine.release(lease) is True
    assert await mine.holder("s1") is None
    taken = await other.acquire("s1")  # at once, not after the TTL
    assert taken is not None
    holder = await other.holder("s1")
    assert holder is not None
    assert holder["worker"] == "w2"


async def test_a_lease_another_worker_holds_now_is_left_to_it(kv: KeyValue) -> None:
    mine, other = BusLeases(kv, "w1"), BusLeases(kv, "w2")
    lease = await mine.acquire("s1")
    assert lease is not None
    await kv.purge("s1")  # it expired (w1 was stopped), and w2 took it
    taken = await other.acquire("s1")
    assert taken is not None
    assert await mine.release(lease) is False
    holder = await other.holder("s1")
    assert holder is not None
    assert holder["worker"] == "w2"
    assert await other.release(taken) is True


async def test_a_lease_given_back_with_its_current_revision_is_deleted(kv: KeyValue) -> None:
    mine = BusLeases(kv, "w1")
    lease = await mine.acquire("s1")
    assert lease is not None
    lease = await mine.heartbeat(lease)
    assert await mine.release(lease) is True
    assert await mine.holder("s1") is None
    assert await mine.release(lease) is False  # already given back: nothing of ours is left
