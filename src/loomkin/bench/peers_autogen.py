"""The overhead work on autogen-core (``SingleThreadedAgentRuntime``, ``RoutedAgent``).

Imported only when autogen-core is installed (the optional ``bench`` extra); the shapes follow
the perf anchors: one-way is ``publish_message`` to a subscriber, request/reply is
``send_message``, fan-out is a coordinator agent gathering K ``send_message`` calls, and an
idle agent is a ``RoutedAgent`` instantiated through its factory (``runtime.get(lazy=False)``).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from dataclasses import dataclass

from autogen_core import (
    AgentId,
    MessageContext,
    RoutedAgent,
    SingleThreadedAgentRuntime,
    TopicId,
    TypeSubscription,
    message_handler,
)

from loomkin.bench.overhead import Figures, percentile_us, rss_bytes

__all__ = ["autogen_fanout", "autogen_oneway", "autogen_rpc", "autogen_spawn"]


@dataclass
class Ping:
    """The message every benchmark sends."""

    i: int


@dataclass
class Fan:
    """Ask the coordinator for one fan-out round over ``k`` workers."""

    k: int


class _Sink(RoutedAgent):  # type: ignore[misc, unused-ignore]  # Any without the stubs
    def __init__(self, n: int, done: asyncio.Event) -> None:
        super().__init__("sink")
        self.n = n
        self.received = 0
        self.done = done

    @message_handler  # type: ignore[misc, untyped-decorator, unused-ignore]  # untyped without the bench extra
    async def on_ping(self, message: Ping, ctx: MessageContext) -> None:
        self.received += 1
        if self.received == self.n:
            self.done.set()


class _Echo(RoutedAgent):  # type: ignore[misc, unused-ignore]
    def __init__(self, sleep_s: float = 0.0) -> None:
        super().__init__("echo")
        self.sleep_s = sleep_s

    @message_handler  # type: ignore[misc, untyped-decorator, unused-ignore]  # untyped without the bench extra
    async def on_ping(self, message: Ping, ctx: MessageContext) -> Ping:
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        return message


class _Coordinator(RoutedAgent):  # type: ignore[misc, unused-ignore]
    def __init__(self) -> None:
        super().__init__("coordinator")

    @message_handler  # type: ignore[misc, untyped-decorator, unused-ignore]  # untyped without the bench extra
    async def on_fan(self, message: Fan, ctx: MessageContext) -> Ping:
        calls = [self.send_message(Ping(i), AgentId("worker", str(i))) for i in range(message.k)]
        await asyncio.gather(*calls)
        return Ping(message.k)


async def autogen_oneway(n: int) -> float:
    """Messages per second: ``publish_message`` to one subscribed agent."""
    runtime = SingleThreadedAgentRuntime()
    done = asyncio.Event()
    await _Sink.register(runtime, "sink", lambda: _Sink(n, done))
    await runtime.add_subscription(TypeSubscription(topic_type="t", agent_type="sink"))
    runtime.start()
    topic = TopicId("t", "default")
    started = time.perf_counter()
    for i in range(n):
        await runtime.publish_message(Ping(i), topic)
    await done.wait()
    elapsed = time.perf_counter() - started
    await runtime.stop()
    return n / elapsed


async def autogen_rpc(n: int) -> Figures:
    """Round trips with ``send_message``: per second, p50 and p99 in µs."""
    runtime = SingleThreadedAgentRuntime()
    await _Echo.register(runtime, "echo", lambda: _Echo())
    runtime.start()
    target = AgentId("echo", "default")
    samples: list[int] = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter_ns()
        await runtime.send_message(Ping(i), target)
        samples.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - started
    await runtime.stop()
    return {
        "rpc_per_s": n / elapsed,
        "rpc_p50_us": percentile_us(samples, 0.5),
        "rpc_p99_us": percentile_us(samples, 0.99),
    }


async def autogen_fanout(k: int, rounds: int, sleep_s: float) -> float:
    """Median milliseconds over ``sleep_s``: a coordinator agent gathers K send_message."""
    runtime = SingleThreadedAgentRuntime()
    await _Echo.register(runtime, "worker", lambda: _Echo(sleep_s))
    await _Coordinator.register(runtime, "coordinator", _Coordinator)
    runtime.start()
    coordinator = AgentId("coordinator", "default")
    await runtime.send_message(Fan(k), coordinator)  # warm-up (instantiates the workers)
    walls = []
    for _ in range(rounds):
        started = time.perf_counter()
        await runtime.send_message(Fan(k), coordinator)
        walls.append(time.perf_counter() - started)
    await runtime.stop()
    return (statistics.median(walls) - sleep_s) * 1000.0


async def autogen_spawn(n: int) -> Figures:
    """Seconds to instantiate N ``RoutedAgent`` s and RSS bytes per idle agent."""
    runtime = SingleThreadedAgentRuntime()
    await _Echo.register(runtime, "echo", lambda: _Echo())
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    for i in range(n):
        await runtime.get("echo", str(i), lazy=False)
    elapsed = time.perf_counter() - started
    gc.collect()
    grown = rss_bytes() - before
    return {"spawn_s": elapsed, "bytes_per_idle_agent": grown / n}
