"""The same overhead work on the baselines: plain asyncio (queues, futures, tasks).

Each function mirrors one in :mod:`loomkin.bench.overhead` and returns the same figure, so
the report can divide one by the other. An asyncio "actor" is an inbox ``Queue`` with a task
reading it, the anchor's "K actor tasks, inbox Queue + Future each" shape. autogen-core lives
in :mod:`loomkin.bench.peers_autogen` (an optional dependency).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from dataclasses import dataclass

from loomkin.bench.overhead import Figures, percentile_us, rss_bytes

__all__ = ["asyncio_fanout", "asyncio_oneway", "asyncio_rpc", "asyncio_spawn"]

_YIELD_EVERY = 256


@dataclass(frozen=True, slots=True)
class _Ping:
    i: int
    reply: asyncio.Future[int] | None = None


async def asyncio_oneway(n: int) -> float:
    """Messages per second through an ``asyncio.Queue`` to a consumer task."""
    queue: asyncio.Queue[_Ping] = asyncio.Queue()
    done = asyncio.Event()

    async def consume() -> None:
        for _ in range(n):
            await queue.get()
        done.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(consume())
        await asyncio.sleep(0)
        started = time.perf_counter()
        for i in range(n):
            queue.put_nowait(_Ping(i))
            if i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        await done.wait()
        elapsed = time.perf_counter() - started
    return n / elapsed


async def asyncio_rpc(n: int) -> Figures:
    """Round trips through a Queue and a Future: per second, p50 and p99 in µs."""
    queue: asyncio.Queue[_Ping] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def echo() -> None:
        while True:
            ping = await queue.get()
            if ping.reply is not None:
                ping.reply.set_result(ping.i)

    samples: list[int] = []
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(echo())
        started = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter_ns()
            fut: asyncio.Future[int] = loop.create_future()
            queue.put_nowait(_Ping(i, fut))
            await fut
            samples.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - started
        task.cancel()
    return {
        "rpc_per_s": n / elapsed,
        "rpc_p50_us": percentile_us(samples, 0.5),
        "rpc_p99_us": percentile_us(samples, 0.99),
    }


async def asyncio_fanout(k: int, rounds: int, sleep_s: float) -> float:
    """Median milliseconds over ``sleep_s``: K actor tasks, an inbox Queue and a Future each."""
    loop = asyncio.get_running_loop()
    inboxes: list[asyncio.Queue[_Ping]] = [asyncio.Queue() for _ in range(k)]

    async def worker(inbox: asyncio.Queue[_Ping]) -> None:
        while True:
            ping = await inbox.get()
            await asyncio.sleep(sleep_s)
            if ping.reply is not None:
                ping.reply.set_result(ping.i)

    async def one_round() -> float:
        started = time.perf_counter()
        futures = [loop.create_future() for _ in range(k)]
        for i, inbox in enumerate(inboxes):
            inbox.put_nowait(_Ping(i, futures[i]))
        await asyncio.gather(*futures)
        return time.perf_counter() - started

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(worker(inbox)) for inbox in inboxes]
        await one_round()
        walls = [await one_round() for _ in range(rounds)]
        for task in tasks:
            task.cancel()
    return (statistics.median(walls) - sleep_s) * 1000.0


async def asyncio_spawn(n: int) -> Figures:
    """Seconds to create N actors (inbox Queue + running task each) and RSS bytes per actor."""

    async def actor(inbox: asyncio.Queue[_Ping]) -> None:
        while True:
            await inbox.get()

    gc.collect()
    before = rss_bytes()
    async with asyncio.TaskGroup() as tg:
        started = time.perf_counter()
        inboxes: list[asyncio.Queue[_Ping]] = [asyncio.Queue() for _ in range(n)]
        tasks = [tg.create_task(actor(inbox)) for inbox in inboxes]
        await asyncio.sleep(0)  # every actor is running and waiting on its inbox
        elapsed = time.perf_counter() - started
        gc.collect()
        grown = rss_bytes() - before
        for task in tasks:
            task.cancel()
    return {"spawn_s": elapsed, "bytes_per_idle_agent": grown / n}
