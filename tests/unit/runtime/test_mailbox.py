from __future__ import annotations

import asyncio
import dataclasses
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomkin.core.records import Tier
from loomkin.errors import PolicyRefused, UserError
from loomkin.runtime import CONTROL_CAPACITY, Mailbox

RANK = {"urgent": 0, "high": 1, "normal": 2}


@dataclasses.dataclass(frozen=True, slots=True)
class Msg:
    tier: Tier
    n: int = 0


def mailbox(capacity: int = 1000) -> Mailbox[Msg, str]:
    return Mailbox(capacity)


def drain_all(mb: Mailbox[Msg, str]) -> list[Msg]:
    out = []
    while (m := mb.get_nowait()) is not None:
        out.append(m)
    return out


tiers = st.sampled_from(["urgent", "high", "normal", "ignore"])


@given(st.lists(tiers, max_size=200))
def test_priority_then_fifo_for_any_delivery_order(order: list[Tier]) -> None:
    mb = mailbox()
    msgs = [Msg(t, i) for i, t in enumerate(order)]
    for m in msgs:
        mb.deliver(m)
    kept = [m for m in msgs if m.tier != "ignore"]
    assert drain_all(mb) == sorted(kept, key=lambda m: (RANK[m.tier], m.n))
    assert mb.statistics().ignored == len(msgs) - len(kept)
    assert len(mb) == 0


@given(st.lists(st.tuples(tiers, st.booleans()), max_size=300), st.integers(1, 20))
def test_interleaved_gets_and_overflow_keep_order_and_bounds(
    ops: list[tuple[Tier, bool]], capacity: int
) -> None:
    mb = mailbox(capacity)
    for i, (tier, take) in enumerate(ops):
        before = mb.statistics()
        mb.deliver(Msg(tier, i))
        after = mb.statistics()
        assert len(mb) <= capacity
        if tier != "ignore" and before.size == capacity:
            if after.rejected > before.rejected:
                # rejected only when nothing strictly lower was queued
                assert all(
                    RANK[t] <= RANK[tier]
                    for t in ("urgent", "high", "normal")
                    if getattr(before, t)
                )
            else:
                assert after.dropped == before.dropped + 1
                assert tier != "normal"
                assert after.urgent >= before.urgent
        if take and len(mb):
            snapshot = mb.statistics()
            m = mb.get_nowait()
            assert m is not None
            best = next(t for t in ("urgent", "high", "normal") if getattr(snapshot, t))
            assert m.tier == best
    remaining = drain_all(mb)
    assert remaining == sorted(remaining, key=lambda m: (RANK[m.tier], m.n))


def test_overflow_drops_lowest_older_tier_and_never_urgent() -> None:
    mb = mailbox(3)
    mb.deliver(Msg("normal", 1))
    mb.deliver(Msg("high", 2))
    mb.deliver(Msg("normal", 3))
    mb.deliver(Msg("urgent", 4))  # drops normal 1
    mb.deliver(Msg("high", 5))  # drops normal 3
    mb.deliver(Msg("high", 6))  # nothing lower: rejected
    mb.deliver(Msg("urgent", 7))  # drops high 2
    mb.deliver(Msg("normal", 8))  # rejected
    assert [m.n for m in drain_all(mb)] == [4, 7, 5]
    stats = mb.statistics()
    assert (stats.dropped, stats.rejected, stats.accepted) == (3, 2, 6)


def test_drain_by_max_tier() -> None:
    mb = mailbox()
    for i, t in enumerate(["normal", "urgent", "high", "urgent", "normal"]):
        mb.deliver(Msg(t, i))  # type: ignore[arg-type]
    assert mb.has_urgent()
    assert [m.n for m in mb.drain("urgent")] == [1, 3]
    assert not mb.has_urgent()
    assert [m.n for m in mb.drain("high")] == [2]
    assert [m.n for m in mb.drain()] == [0, 4]
    assert mb.drain() == []
    assert len(mb) == 0


def test_control_lane_is_separate_fifo_and_bounded() -> None:
    mb = mailbox(1)
    mb.deliver(Msg("normal"))
    mb.put_control("pause")
    mb.put_control("steer")
    assert mb.has_control()
    assert mb.take_control() == "pause"
    assert mb.take_control() == "steer"
    assert mb.take_control() is None
    assert len(mb) == 1
    for i in range(CONTROL_CAPACITY):
        mb.put_control(str(i))
    with pytest.raises(PolicyRefused, match="control lane is full"):
        mb.put_control("one too many")


def test_on_arrival_is_called_for_accepted_messages_and_commands_only() -> None:
    calls: list[int] = []
    mb: Mailbox[Msg, str] = Mailbox(1, on_arrival=lambda: calls.append(1))
    mb.deliver(Msg("ignore"))
    mb.deliver(Msg("normal"))
    mb.deliver(Msg("normal"))  # rejected
    mb.put_control("pause")
    assert len(calls) == 2


def test_capacity_must_be_positive() -> None:
    with pytest.raises(UserError, match="capacity"):
        Mailbox(0)


async def test_wait_wakes_on_message_and_control() -> None:
    mb = mailbox()
    waiter = asyncio.create_task(mb.wait())
    other = asyncio.create_task(mb.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    mb.deliver(Msg("high"))
    await asyncio.gather(waiter, other)
    await mb.wait()  # returns at once while something is waiting
    mb.get_nowait()
    waiter = asyncio.create_task(mb.wait())
    await asyncio.sleep(0)
    mb.put_control("resume")
    await waiter


async def test_cancelling_one_waiter_leaves_the_others_waiting() -> None:
    mb = mailbox()
    a = asyncio.create_task(mb.wait())
    b = asyncio.create_task(mb.wait())
    await asyncio.sleep(0)
    a.cancel()
    await asyncio.wait([a])
    assert a.cancelled()
    mb.deliver(Msg("normal"))
    await b


async def test_wait_control_ignores_messages_and_wakes_on_a_command() -> None:
    mb = mailbox()
    mb.deliver(Msg("urgent"))  # a waiting message is not a reason to return
    waiter = asyncio.create_task(mb.wait_control())
    cancelled = asyncio.create_task(mb.wait_control())
    await asyncio.sleep(0)
    assert not waiter.done()
    cancelled.cancel()
    await asyncio.wait([cancelled])
    mb.deliver(Msg("normal"))
    await asyncio.sleep(0)
    assert not waiter.done()
    mb.put_control("pause")
    await waiter
    await mb.wait_control()  # returns at once while a command waits
    assert mb.take_control() == "pause"


def test_idle_mailbox_is_small() -> None:
    mb = mailbox()
    mb.deliver(Msg("urgent"))
    mb.put_control("x")
    mb.get_nowait()
    mb.take_control()
    # Idle: no deques, no waiters; just the slotted object.
    assert sys.getsizeof(mb) < 200
    assert not hasattr(mb, "__dict__")
