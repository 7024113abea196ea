"""Runtime overhead of Loomkin, measured side by side with plain asyncio and autogen-core.

How this works and why:

* **Messages.** A Loomkin actor is what an agent is underneath: a bounded
  :class:`~loomkin.runtime.mailbox.Mailbox` subscribed to its topic on the
  :class:`~loomkin.bus.Bus`, woken by arrivals. One-way throughput publishes N messages to one
  actor; request/reply sends one request at a time and waits for the answer on the sender's
  own mailbox (p50/p99 per round trip). The logged variants take the path real agents' messages
  take: each message is appended as a ``MessageSent`` event through the
  :class:`~loomkin.runtime.eventlog.EventLog` (on the memory or the SQLite store) and is
  published on the bus by a log listener once committed, as ``SessionRuntime`` does; 32
  senders run concurrently so the log's group commit can work.
* **Fan-out / fan-in.** One coordinator publishes to K worker actors; a worker's arrival
  starts its activation under a :class:`~loomkin.runtime.supervisor.Supervisor` (the way an
  idle agent is woken), which sleeps 50 ms (a model call) and replies. Overhead = wall time
  above the ideal 50 ms; median of the timed rounds after a warm-up.
* **Scale.** Real agents, spawned with ``SessionRuntime.spawn_agent`` (events, projections,
  mailbox, bus subscriptions); RSS delta from ``/proc/self/status`` after ``gc.collect()``.

Absolute figures drift on a shared machine; the ratios to the asyncio baseline, measured in
the same process, are the figures to read. Timing uses ``time.perf_counter`` (benchmarks
measure real time on purpose; this module is never used by the runtime).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.bus import Bus, BusMessage, agent_topic, classify
from loomkin.core.events import MessageSent
from loomkin.ids import AgentId, MessageId, SessionId
from loomkin.persistence import open_store
from loomkin.runtime.eventlog import EventLog
from loomkin.runtime.mailbox import Mailbox
from loomkin.runtime.supervisor import Supervisor
from loomkin.service import Loomkin
from loomkin.testing.models import FunctionModel, Reply

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.core.events import RecordedEvent

__all__ = [
    "Figures",
    "OverheadConfig",
    "loomkin_fanout",
    "loomkin_logged_oneway",
    "loomkin_oneway",
    "loomkin_rpc",
    "loomkin_spawn",
    "percentile_us",
    "rss_bytes",
]

Figures = dict[str, float | None]
"""Flat figures of one system (keys without the system prefix)."""

_YIELD_EVERY = 256
"""Senders yield to the loop every this many messages (same for every system)."""
_SENDERS = 32
_SESSION = SessionId("session_bench")


@dataclass(frozen=True, slots=True, kw_only=True)
class OverheadConfig:
    """Sizes of the overhead benchmark (the defaults are the published run)."""

    messages: int = 100_000
    """One-way messages (in-process, no log)."""
    rpcs: int = 20_000
    """Request/reply round trips."""
    logged_messages: int = 20_000
    """One-way messages through the event log (memory and SQLite)."""
    fanout_ks: tuple[int, ...] = (10, 100, 1000)
    fanout_rounds: int = 5
    """Timed rounds per K (after one warm-up round)."""
    sleep_s: float = 0.05
    """The simulated model call of a fan-out worker."""
    agent_counts: tuple[int, ...] = (1000, 10_000)
    startup_repeats: int = 5
    """Timed runs per start-up figure (CPU seconds, median; see :mod:`loomkin.bench.startup`)."""


def rss_bytes() -> int:
    """Resident set size of this process (``VmRSS``), in bytes; 0 where procfs is missing."""
    try:
        text = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile_us(samples_ns: list[int], q: float) -> float:
    """The ``q`` quantile (0–1) of nanosecond samples, in microseconds."""
    if not samples_ns:
        return 0.0
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def _message(to: str, i: int) -> BusMessage:
    return BusMessage(
        message_id=f"m{i}",
        msg_type="peer_message",
        tier="normal",
        content="ping",
        from_agent="agent_a",
        from_name="a",
        from_team=None,
        to_agent=to,
        to_team=None,
        topic=None,
        data=None,
        sent_at=0.0,
    )


class _Actor:
    """A mailbox on the bus with a loop that hands each message to ``handle``."""

    def __init__(self, bus: Bus, name: str, handle: Callable[[BusMessage], None]) -> None:
        self.name = name
        self.mailbox: Mailbox[BusMessage, None] = Mailbox(capacity=10_000)
        self._handle = handle
        self._unsubscribe = bus.subscribe(agent_topic(name), self.mailbox)

    async def run(self) -> None:
        mailbox, handle = self.mailbox, self._handle
        while True:
            await mailbox.wait()
            for message in mailbox.drain():
                handle(message)


class _Counter:
    """A message handler that sets ``done`` once it has seen ``n`` messages."""

    __slots__ = ("done", "n", "received")

    def __init__(self, n: int) -> None:
        self.n = n
        self.received = 0
        self.done = asyncio.Event()

    def __call__(self, _message: BusMessage) -> None:
        self.received += 1
        if self.received == self.n:
            self.done.set()


async def loomkin_oneway(n: int) -> float:
    """Messages per second from one actor to another through the bus and a mailbox."""
    bus = Bus()
    count = _Counter(n)
    done = count.done

    sink = _Actor(bus, "b", count)
    topic = agent_topic("b")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sink.run())
        await asyncio.sleep(0)
        started = time.perf_counter()
        for i in range(n):
            bus.publish(topic, _message("b", i))
            if i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        await done.wait()
        elapsed = time.perf_counter() - started
        task.cancel()
    return n / elapsed


async def loomkin_rpc(n: int) -> Figures:
    """Request/reply round trips through the bus: per second, p50 and p99 in µs."""
    bus = Bus()
    reply_box: Mailbox[BusMessage, None] = Mailbox(capacity=16)
    bus.subscribe(agent_topic("a"), reply_box)

    def answer(_incoming: BusMessage) -> None:
        bus.publish(agent_topic("a"), _message("a", 0))

    echo = _Actor(bus, "b", answer)
    samples: list[int] = []
    topic = agent_topic("b")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(echo.run())
        await asyncio.sleep(0)
        started = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter_ns()
            bus.publish(topic, _message("b", i))
            await reply_box.wait()
            reply_box.get_nowait()
            samples.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - started
        task.cancel()
    return {
        "rpc_per_s": n / elapsed,
        "rpc_p50_us": percentile_us(samples, 0.5),
        "rpc_p99_us": percentile_us(samples, 0.99),
    }


def _sent(i: int) -> MessageSent:
    return MessageSent(
        session_id=_SESSION,
        message_id=MessageId(f"msg_{i}"),
        msg_type="peer_message",
        tier=classify("peer_message"),
        content="ping",
        from_agent=AgentId("agent_a"),
        from_name="a",
        to_agent=AgentId("agent_b"),
    )


def _deliverer(bus: Bus) -> Callable[[RecordedEvent], None]:
    """The log listener that publishes committed messages (as ``SessionRuntime`` does)."""

    def deliver(recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, MessageSent) and event.to_agent is not None:
            bus.publish(agent_topic(event.to_agent), _message(event.to_agent, 0))

    return deliver


async def loomkin_logged_oneway(n: int, store_url: str) -> float:
    """Messages per second when each is appended to the event log before delivery."""
    store = await open_store(store_url)
    log = EventLog(store)
    bus = Bus()
    count = _Counter(n)
    done = count.done

    sink = _Actor(bus, "agent_b", count)
    log.add_listener(_deliverer(bus))

    async def sender(first: int, count_: int) -> None:
        for i in range(first, first + count_):
            await log.append(_sent(i))

    share = n // _SENDERS
    try:
        await log.start()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(sink.run())
            started = time.perf_counter()
            async with asyncio.TaskGroup() as senders:
                for s in range(_SENDERS):
                    extra = n - share * _SENDERS if s == _SENDERS - 1 else 0
                    senders.create_task(sender(s * share, share + extra))
            await done.wait()
            elapsed = time.perf_counter() - started
            task.cancel()
    finally:
        await log.close()
        await store.close()
    return n / elapsed


async def _fanout_round(bus: Bus, k: int, box: Mailbox[BusMessage, None]) -> float:
    started = time.perf_counter()
    for i in range(k):
        bus.publish(agent_topic(f"w{i}"), _message(f"w{i}", i))
    got = 0
    while got < k:
        await box.wait()
        got += len(box.drain())
    return time.perf_counter() - started


class _Worker:
    """An idle actor woken by arrivals: its activation runs under the supervisor."""

    def __init__(self, bus: Bus, supervisor: Supervisor, name: str, sleep_s: float) -> None:
        self.bus = bus
        self.supervisor = supervisor
        self.name = name
        self.sleep_s = sleep_s
        self.mailbox: Mailbox[BusMessage, None] = Mailbox(capacity=16, on_arrival=self._wake)
        bus.subscribe(agent_topic(name), self.mailbox)

    def _wake(self) -> None:
        self.supervisor.run(self.name, self._activation)

    async def _activation(self) -> None:
        while self.mailbox.get_nowait() is not None:
            await asyncio.sleep(self.sleep_s)  # the simulated model call
            self.bus.publish(agent_topic("coordinator"), _message("coordinator", 0))


async def loomkin_fanout(k: int, rounds: int, sleep_s: float) -> float:
    """Median milliseconds over ``sleep_s`` for one coordinator fanning out to K actors."""
    bus = Bus()
    supervisor = Supervisor()
    box: Mailbox[BusMessage, None] = Mailbox(capacity=max(16, k))
    bus.subscribe(agent_topic("coordinator"), box)
    workers = [_Worker(bus, supervisor, f"w{i}", sleep_s) for i in range(k)]
    try:
        await _fanout_round(bus, k, box)  # warm-up
        walls = [await _fanout_round(bus, k, box) for _ in range(rounds)]
    finally:
        await supervisor.stop()
    del workers
    return (statistics.median(walls) - sleep_s) * 1000.0


def _idle_model() -> FunctionModel:
    return FunctionModel(lambda _request: Reply(text="ok"), name="bench:idle")


async def loomkin_spawn(n: int) -> Figures:
    """Seconds to spawn ``n`` real agents and RSS bytes per idle agent."""
    model = _idle_model()
    settings = SessionSettings(max_agents_per_team=n + 1, bootstrap_orienter=False)
    with tempfile.TemporaryDirectory() as project:
        async with await Loomkin.open("memory:") as lk:
            session = await lk.open_session(
                project, model_factory=lambda _r, _n: model, settings=settings
            )
            gc.collect()
            before = rss_bytes()
            started = time.perf_counter()
            for i in range(n):
                await session.spawn_agent(f"a{i}", "coder")
            elapsed = time.perf_counter() - started
            gc.collect()
            grown = rss_bytes() - before
    return {"spawn_s": elapsed, "bytes_per_idle_agent": grown / n}
