from __future__ import annotations

import asyncio
import logging

import pytest

from loomkin.core.events import AssistantReplied, Event, RecordedEvent, UserMessagePosted
from loomkin.errors import ProjectionFailed, UserError
from loomkin.ids import AgentId, MessageId, SessionId
from loomkin.runtime import EventLog, LoopClock


def msg(i: int, session: str = "s1") -> UserMessagePosted:
    return UserMessagePosted(
        session_id=SessionId(session), message_id=MessageId(f"m{i}"), text=str(i)
    )


def reply(i: int, session: str = "s1") -> AssistantReplied:
    return AssistantReplied(
        session_id=SessionId(session), agent_id=AgentId("a"), agent_name="a", text=str(i)
    )


def texts(recs: list[RecordedEvent]) -> list[str]:
    out = []
    for r in recs:
        assert isinstance(r.event, UserMessagePosted | AssistantReplied)
        out.append(r.event.text)
    return out


class FixedClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


async def test_append_records_positions_ids_and_clock_time(store) -> None:
    async with EventLog(store, clock=FixedClock()) as log:
        recs = await log.append(msg(1), msg(2))
        more = await log.append(msg(3))
    assert [r.position for r in recs + more] == [1, 2, 3]
    assert all(r.recorded_at == 1000.0 for r in recs)
    assert len({r.event_id for r in recs + more}) == 3
    assert log.last_position == 3
    assert await log.append() == []


async def test_concurrent_appends_are_group_committed_and_atomic_per_call(store, log) -> None:
    results = await asyncio.gather(*(log.append(msg(i), msg(i)) for i in range(200)))
    assert len(store.appends) < 200  # coalesced into fewer transactions
    for i, recs in enumerate(results):
        assert texts(recs) == [str(i), str(i)]
        assert recs[1].position == recs[0].position + 1  # one call's batch stays together
    stats = log.statistics()
    assert stats.appends == 200
    assert stats.events == 400
    assert stats.commits == len(store.appends)


async def test_max_batch_bounds_transactions_without_splitting_a_call(store) -> None:
    async with EventLog(store, max_batch=5) as log:
        await asyncio.gather(
            *(log.append(msg(i), msg(i)) for i in range(20)),
            log.append(*(msg(100 + j) for j in range(8))),
        )
    assert max(store.appends) == 8  # the single large call is written alone
    assert all(n <= 5 for n in store.appends if n != 8)


async def test_a_failing_call_fails_alone(store, log) -> None:
    store.fail_if = lambda events: any(e.event.kind == "assistant_replied" for e in events)
    outcomes = await asyncio.gather(
        *(log.append(reply(i) if i == 5 else msg(i)) for i in range(10)),
        return_exceptions=True,
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1
    assert str(failed[0]) == "injected failure"
    assert sorted(texts(await log.read())) == sorted(str(i) for i in range(10) if i != 5)
    assert log.statistics().failed_appends == 1


async def test_listeners_run_in_order_before_append_returns(log) -> None:
    seen: list[int] = []
    remove = log.add_listener(lambda r: seen.append(r.position))
    await log.append(msg(1), msg(2))
    assert seen == [1, 2]
    remove()
    remove()
    await log.append(msg(3))
    assert seen == [1, 2]


async def test_a_raising_listener_halts_the_log_naming_it_and_the_position(log, caplog) -> None:
    seen: list[int] = []
    halts: list[ProjectionFailed] = []
    log._on_halt = halts.append

    def bad(rec: RecordedEvent) -> None:
        if rec.position == 2:
            raise ValueError("boom")

    log.add_listener(bad)
    log.add_listener(lambda r: seen.append(r.position))
    sub = log.subscribe(after=0)
    with (
        caplog.at_level(logging.CRITICAL, logger="loomkin.runtime.eventlog"),
        pytest.raises(ProjectionFailed) as failed,
    ):
        await log.append(msg(1), msg(2))
    assert failed.value.position == 2
    assert "bad" in failed.value.projection
    assert "boom" in str(failed.value)
    assert "event 2" in str(failed.value)
    assert seen == [1]  # the listeners after the failure never saw event 2
    assert log.statistics().listener_errors == 1
    assert halts == [failed.value]
    assert log.halted is failed.value
    with pytest.raises(ProjectionFailed):
        await log.append(msg(3))
    # What was committed stays committed; the subscriptions end after it.
    assert texts(await log.read()) == ["1", "2"]
    assert texts([r async for r in sub]) == ["1", "2"]


async def test_calls_queued_behind_a_halting_batch_fail_too(log) -> None:
    def bad(rec: RecordedEvent) -> None:
        raise RuntimeError("projection bug")

    log.add_listener(bad)
    outcomes = await asyncio.gather(*(log.append(msg(i)) for i in range(5)), return_exceptions=True)
    assert all(isinstance(o, ProjectionFailed) for o in outcomes)


async def test_live_subscription_sees_only_new_events(log) -> None:
    await log.append(msg(0))
    sub = log.subscribe()
    await log.append(msg(1), msg(2))
    got = [await anext(sub), await anext(sub)]
    assert texts(got) == ["1", "2"]
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_catch_up_subscription_while_appends_are_in_flight(store) -> None:
    async with EventLog(store) as log:
        await asyncio.gather(*(log.append(msg(i)) for i in range(50)))
        total = 600

        async def produce() -> None:
            for i in range(50, total, 10):
                await asyncio.gather(*(log.append(msg(j)) for j in range(i, i + 10)))

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0)
        got: list[RecordedEvent] = []
        async with log.subscribe(after=20) as sub:
            async for rec in sub:
                got.append(rec)
                if rec.position == total:
                    break
        await producer
    assert [r.position for r in got] == list(range(21, total + 1))


async def test_subscriptions_filter_by_session_and_kind(log) -> None:
    await log.append(msg(1, "s1"), msg(2, "s2"), reply(3, "s2"))
    by_session = log.subscribe(after=0, session_id="s2")
    by_kind = log.subscribe(after=0, kinds=frozenset({"assistant_replied"}))
    await log.append(msg(4, "s2"), reply(5, "s1"))
    assert texts([await anext(by_session) for _ in range(3)]) == ["2", "3", "4"]
    assert texts([await anext(by_kind) for _ in range(2)]) == ["3", "5"]
    assert by_session.statistics().delivered == 3


async def test_overflow_falls_back_to_the_store_and_loses_nothing(store, log) -> None:
    sub = log.subscribe(maxsize=5)
    for chunk in range(10):
        await log.append(*(msg(chunk * 10 + j) for j in range(10)))
    assert sub.statistics().overflows > 0
    assert sub.statistics().buffered <= 5
    got = [await anext(sub) for _ in range(100)]
    assert [r.position for r in got] == list(range(1, 101))
    await log.append(msg(100))
    assert (await anext(sub)).position == 101


async def test_close_flushes_pending_appends_and_ends_subscriptions(store) -> None:
    log = EventLog(store)
    await log.start()
    sub = log.subscribe()
    tasks = [asyncio.create_task(log.append(msg(i))) for i in range(5)]
    await asyncio.sleep(0)
    await log.close()
    assert [len(t.result()) for t in tasks] == [1] * 5
    assert [r.position async for r in sub] == [1, 2, 3, 4, 5]
    with pytest.raises(UserError, match="closed"):
        await log.append(msg(9))
    with pytest.raises(UserError, match="closed"):
        log.subscribe()


async def test_read_and_read_stream(log) -> None:
    await log.append(msg(1, "s1"), msg(2, "s2"))
    assert texts(await log.read(session_id="s2")) == ["2"]
    assert texts(await log.read(after=1)) == ["2"]
    assert texts(await log.read_stream("session:s1")) == ["1"]


async def test_append_rejects_non_events(log) -> None:
    with pytest.raises(UserError, match="Event instances"):
        await log.append("nope")  # type: ignore[arg-type]
    assert isinstance(msg(1), Event)


@pytest.mark.looptime
async def test_loop_clock_follows_virtual_time() -> None:
    clock = LoopClock()
    t0, m0 = clock.now(), clock.monotonic()
    await asyncio.sleep(3600)
    assert clock.monotonic() - m0 == pytest.approx(3600)
    assert clock.now() - t0 == pytest.approx(3600)


@pytest.mark.parametrize("maxsize", [1, 7, 10_000])
async def test_many_subscribers_started_mid_stream_see_every_event_once(store, maxsize) -> None:
    total = 400
    async with EventLog(store) as log:

        async def produce(k: int) -> None:
            for i in range(k, total, 8):
                await log.append(msg(i))

        async def consume(after: int | None, yield_every: int) -> list[int]:
            sub = log.subscribe(after=after, maxsize=maxsize)
            start = log.last_position if after is None else after
            got: list[int] = []
            async with sub:
                async for rec in sub:
                    got.append(rec.position)
                    if len(got) % yield_every == 0:
                        await asyncio.sleep(0)
                    if rec.position == total:
                        break
            assert got == list(range(start + 1, total + 1))
            return got

        producers = [asyncio.create_task(produce(k)) for k in range(8)]
        consumers = []
        for j in range(6):
            await asyncio.sleep(0)
            after = None if j % 2 else log.last_position // 2
            consumers.append(asyncio.create_task(consume(after, 1 + j)))
        await asyncio.gather(*producers)
        results = await asyncio.gather(*consumers)
    assert all(r[-1] == total for r in results)


async def test_live_subscription_made_before_start_does_not_replay_history(store) -> None:
    async with EventLog(store) as first:
        await first.append(msg(1), msg(2))
    log = EventLog(store)
    sub = log.subscribe(maxsize=1)
    await log.start()
    await log.append(msg(3), msg(4), msg(5))  # overflows: re-reads from the store
    assert [(await anext(sub)).position for _ in range(3)] == [3, 4, 5]
    stats = sub.statistics()
    assert (stats.delivered, stats.cursor, stats.overflows) == (3, 5, 1)
    await log.close()
