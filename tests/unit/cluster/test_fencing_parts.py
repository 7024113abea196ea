"""The stall watchdog of a hosted session's lease, and the ledger of a worker's appends."""

from __future__ import annotations

import asyncio

import pytest

from loomkin.cluster.keeper import MIN_RENEWAL_S, RenewalWatch
from loomkin.cluster.leases import LeaseLost
from loomkin.cluster.writes import LedgerStore, WriteLedger
from loomkin.errors import StaleEpoch, UserError
from loomkin.ids import SessionId
from loomkin.persistence import MemoryStore
from loomkin.testing.conformance import task_event


@pytest.mark.looptime
async def test_a_lease_not_renewed_for_the_stall_limit_stops_its_holder() -> None:
    watch = RenewalWatch("s1", stall_s=1.5)
    await asyncio.sleep(1.0)
    watch.check()  # still within the limit
    assert watch.left() == pytest.approx(0.5)
    watch.renewed()
    await asyncio.sleep(1.4)
    watch.check()
    await asyncio.sleep(0.2)  # e.g. the process was stopped (SIGSTOP) that long
    assert watch.left() == MIN_RENEWAL_S
    with pytest.raises(LeaseLost, match=r"session s1: .* not renewed for 1\.6 s .*stop here"):
        watch.check(TimeoutError("no reply"))


async def test_a_stall_limit_must_be_positive() -> None:
    with pytest.raises(UserError, match="positive"):
        RenewalWatch("s1", stall_s=0)


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
