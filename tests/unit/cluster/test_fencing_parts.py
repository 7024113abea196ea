"""The stall watchdog of a kept lease, and the ledger of a worker's appends."""

from __future__ import annotations

import asyncio

import pytest

from loomkin.cluster import HostOptions
from loomkin.cluster.keeper import KeptLease, LeaseKeeper
from loomkin.cluster.leases import BusLease, LeaseLost
from loomkin.cluster.names import ClusterNames
from loomkin.cluster.writes import LedgerStore, WriteLedger
from loomkin.errors import StaleEpoch, UserError
from loomkin.ids import SessionId
from loomkin.persistence import MemoryStore
from loomkin.testing.conformance import task_event


async def test_a_lease_not_renewed_for_the_stall_limit_stops_its_holder() -> None:
    now = [100.0]
    keeper = LeaseKeeper("nats://127.0.0.1:4222", ClusterNames("t"), "w1", ttl_s=1.5)
    lease = BusLease(key="s1", worker_id="w1", revision=3)
    kept = KeptLease(keeper, lease, stall_s=1.5, changed=asyncio.Event(), clock=lambda: now[0])
    now[0] += 1.0
    kept.check()  # still within the limit
    kept.last_ok = now[0]  # the keeper's thread renewed it
    now[0] += 1.4
    kept.check()
    now[0] += 0.2  # e.g. the process was stopped (SIGSTOP) that long
    with pytest.raises(LeaseLost, match=r"session s1: .* not renewed for 1\.6 s .*stop here"):
        kept.check()


async def test_a_lost_lease_stops_its_holder_with_the_keepers_reason() -> None:
    keeper = LeaseKeeper("nats://127.0.0.1:4222", ClusterNames("t"), "w1", ttl_s=1.5)
    lease = BusLease(key="s1", worker_id="w1", revision=3)
    changed = asyncio.Event()
    kept = KeptLease(keeper, lease, stall_s=1.5, changed=changed)
    kept._lose(LeaseLost("taken by w2"))  # what the keeper's thread does
    await asyncio.wait_for(changed.wait(), 5)  # the worker's loop is woken
    with pytest.raises(LeaseLost, match="taken by w2"):
        kept.check()


async def test_a_stall_limit_must_be_positive() -> None:
    keeper = LeaseKeeper("nats://127.0.0.1:4222", ClusterNames("t"), "w1", ttl_s=1.5)
    lease = BusLease(key="s1", worker_id="w1", revision=3)
    with pytest.raises(UserError, match="positive"):
        KeptLease(keeper, lease, stall_s=0, changed=asyncio.Event())


def test_a_worker_refuses_a_stall_limit_that_is_not_positive() -> None:
    with pytest.raises(UserError, match="stall_s must be a positive"):
        HostOptions(store_url="memory:", ttl_s=10.0, stall_s=0.0)


async def test_the_ledger_records_how_far_appends_reached_and_which_were_refused() -> None:
    ledger = WriteLedger()
    store = MemoryStore()
    session = SessionId("s1")
    old = await store.acquire_lease(session, "old", ttl_s=60.0)
    writer = LedgerStore(store, ledger)
    written = await writer.append([task_event("a"), task_event("b")], fences=[old.fence])
    assert ledger.of("s1").written_to == written[-1].position
    await store.acquire_lease(session, "new", ttl_s=60.0, take_over=True)
    late = [task_event("c"), task_event("d", session="s2")]
    with pytest.raises(StaleEpoch):
        await writer.append(late, fences=[old.fence])
    assert ledger.of("s1").refused_appends == 1
    assert ledger.of("s1").refused == [str(late[0].event_id)]  # only that session's events
    assert ledger.of("s1").written_to == written[-1].position
    assert [e.event_id for e in await writer.read()] == [e.event_id for e in written]
    assert ledger.of("s2").refused == []
