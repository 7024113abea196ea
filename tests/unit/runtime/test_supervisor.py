from __future__ import annotations

import asyncio
import logging

import pytest

from loomkin.errors import UserError
from loomkin.runtime import Supervisor


class Boom(Exception):
    pass


@pytest.mark.looptime
async def test_restarts_then_gives_up_after_too_many_crashes_in_the_window() -> None:
    sup = Supervisor(max_restarts=3, window_s=60.0)
    starts = 0
    crashes: list[int] = []
    gave_up: list[str] = []

    async def child() -> None:
        nonlocal starts
        starts += 1
        await asyncio.sleep(1)
        raise Boom(f"crash {starts}")

    async def on_crash(key: str, exc: BaseException, n: int) -> None:
        crashes.append(n)

    async def on_give_up(key: str, exc: BaseException) -> None:
        gave_up.append(f"{key}: {exc}")

    task = sup.run("a", child, on_crash=on_crash, on_give_up=on_give_up)
    await task
    assert starts == 4
    assert crashes == [1, 2, 3, 4]
    assert gave_up == ["a: crash 4"]
    stats = sup.statistics()
    assert (stats.crashes, stats.restarts, stats.give_ups, stats.running) == (4, 3, 1, 0)
    assert not sup.is_running("a")


@pytest.mark.looptime
async def test_crashes_outside_the_window_do_not_count() -> None:
    sup = Supervisor(max_restarts=1, window_s=10.0)
    starts = 0
    counts: list[int] = []

    async def child() -> None:
        nonlocal starts
        starts += 1
        if starts <= 5:
            await asyncio.sleep(30)  # each crash is 30 s after the previous one
            raise Boom("late")

    async def on_crash(key: str, exc: BaseException, n: int) -> None:
        counts.append(n)

    await sup.run("a", child, on_crash=on_crash)
    assert starts == 6  # never gave up: at most one crash in any 10 s window
    assert counts == [1] * 5
    assert sup.statistics().give_ups == 0


@pytest.mark.looptime
async def test_crashes_inside_the_window_accumulate() -> None:
    sup = Supervisor(max_restarts=2, window_s=10.0)
    counts: list[int] = []

    async def child() -> None:
        await asyncio.sleep(4)
        raise Boom("again")

    async def on_crash(key: str, exc: BaseException, n: int) -> None:
        counts.append(n)

    await sup.run("a", child, on_crash=on_crash)
    # crashes at t=4, 8, 12: the third sees t=4 fall out of the window (12-10=2 < 4) → 3 in it
    assert counts == [1, 2, 3]
    assert sup.statistics().give_ups == 1


async def test_running_key_is_not_started_twice() -> None:
    sup = Supervisor()
    gate = asyncio.Event()
    starts = 0

    async def child() -> None:
        nonlocal starts
        starts += 1
        await gate.wait()

    t1 = sup.run("a", child)
    t2 = sup.run("a", child)
    assert t1 is t2
    assert sup.is_running("a")
    gate.set()
    await sup.wait_idle()
    assert starts == 1
    assert not sup.is_running("a")
    gate.clear()
    t3 = sup.run("a", child)  # finished: a new run starts
    assert t3 is not t1
    await sup.stop()
    assert t3.cancelled()


async def test_cancel_stops_the_child_without_restart() -> None:
    sup = Supervisor()
    cleaned = asyncio.Event()

    async def child() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    task = sup.run("a", child)
    await asyncio.sleep(0)
    await sup.cancel("a")
    assert cleaned.is_set()
    assert task.cancelled()
    assert sup.statistics().crashes == 0
    await sup.cancel("missing")  # no-op


async def test_stop_cancels_everything_and_refuses_new_children() -> None:
    sup = Supervisor()

    async def forever() -> None:
        await asyncio.Event().wait()

    tasks = [sup.run(f"k{i}", forever) for i in range(5)]
    await asyncio.sleep(0)
    assert sup.statistics().running == 5
    assert not sup.stopped
    await sup.stop()
    assert sup.stopped
    assert all(t.cancelled() for t in tasks)
    with pytest.raises(UserError, match="stopped"):
        sup.run("late", forever)


async def test_failing_callbacks_are_logged_and_counted(caplog) -> None:
    sup = Supervisor(max_restarts=0)

    async def child() -> None:
        raise Boom("x")

    async def bad_callback(key: str, exc: BaseException, n: int) -> None:
        raise RuntimeError("callback broke")

    with caplog.at_level(logging.WARNING, logger="loomkin.runtime.supervisor"):
        await sup.run("a", child, on_crash=bad_callback)
    assert sup.statistics().callback_errors == 1
    assert "callback broke" in caplog.text
    assert "giving up on 'a'" in caplog.text


async def test_a_crashing_factory_call_counts_as_a_crash() -> None:
    sup = Supervisor(max_restarts=1)
    calls = 0

    def factory() -> asyncio.Future[None]:
        nonlocal calls
        calls += 1
        raise Boom("cannot even start")

    await sup.run("a", factory)
    assert calls == 2
    assert sup.statistics().give_ups == 1


async def test_wait_idle_waits_for_children_started_meanwhile() -> None:
    sup = Supervisor()
    done: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0)
        done.append("second")

    async def first() -> None:
        sup.run("second", second)
        done.append("first")

    sup.run("first", first)
    await sup.wait_idle()
    assert done == ["first", "second"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(UserError, match="max_restarts"):
        Supervisor(max_restarts=-1)
    with pytest.raises(UserError, match="window_s"):
        Supervisor(window_s=0)
