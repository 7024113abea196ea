"""A host learns that an agent's worker lives from its directory reports, not by reading keys.

Against the real NATS server; waits on the real lease TTL (short here), not on sleeps.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

# The scripted models check each request against the providers' rules, with the providers'
# SDKs: imported here, not on the event loop at the first call (seconds on a busy machine,
# long enough for the placements' NATS requests made meanwhile to time out).
import loomkin.llm.providers.anthropic  # noqa: F401
from loomkin.agents.roles import resolve_role
from loomkin.bench.faults_child import SETTINGS
from loomkin.bench.placed_calls import silent_call_reads
from loomkin.cluster.names import agent_key
from loomkin.core.chat import UserMessage
from loomkin.llm.model import ModelRequest
from loomkin.testing.cluster import ExecutorRig, executor_rig, streamed_text
from loomkin.testing.models import FunctionModel, Reply

from .coders import TTL

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from loomkin.llm.model import Model

pytestmark = pytest.mark.timeout(120)


async def _never(_request: ModelRequest) -> Reply:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _echo(request: ModelRequest) -> Reply:
    text = next(m.text for m in reversed(request.messages) if isinstance(m, UserMessage))
    return Reply(text=f"read {len(text)} characters")


def silent(_role: object, name: str) -> Model:
    return FunctionModel(_never, name=f"scripted:{name}")


def echo(_role: object, name: str) -> Model:
    return FunctionModel(_echo, name=f"scripted:{name}")


def ask(rig: ExecutorRig, n: int) -> asyncio.Task[str]:
    """Send agent ``n``'s call through the rig's host."""
    model = rig.placer.wrap(silent)(resolve_role("coder"), f"a{n}")
    request = ModelRequest(messages=(UserMessage(text="hold"),), cache_key=f"agent_{n}")
    return asyncio.create_task(streamed_text(model, request))


@pytest.fixture
async def rig(bus_url: str, cluster: str) -> AsyncIterator[ExecutorRig]:
    async with executor_rig(
        bus_url, cluster, ttl_s=TTL, model_factory=silent, settings=SETTINGS
    ) as rig:
        yield rig


async def until(condition: Callable[[], bool], *, within_s: float) -> None:
    """Wait (polling) until ``condition()`` is true; fail after ``within_s``."""
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - a condition of the test's own
            await asyncio.sleep(0.02)


async def test_calls_waiting_on_a_live_worker_do_not_read_their_agents_keys(
    rig: ExecutorRig,
) -> None:
    calls = 20
    rig.placer.recheck_s = 60.0  # the once-a-TTL read apart: reports alone keep them quiet
    waiting = [ask(rig, n) for n in range(calls)]
    try:
        await until(lambda: rig.executor.in_flight() == calls, within_s=30)
        directory = rig.placer._directory
        reads, heard = rig.placer.lease_reads, directory.reports_heard
        loop = asyncio.get_running_loop()
        start = loop.time()
        # A TTL of silence: polling each key every check_s would read it 4 times per call.
        await until(lambda: loop.time() - start >= TTL, within_s=30)
        assert directory.reports_heard > heard  # the worker's reports came meanwhile
        # None, normally; a report the loaded machine delayed past half a TTL costs each
        # call one read (polling would make 3 each).
        assert rig.placer.lease_reads - reads <= calls, "silent calls poll their keys"
        assert all(not task.done() for task in waiting)
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.wait(waiting)


async def test_a_silent_call_still_reads_its_key_once_a_ttl_while_its_worker_reports(
    rig: ExecutorRig,
) -> None:
    rig.placer.lapse_s = 60.0  # heard from or not: only the once-a-TTL read
    call = ask(rig, 0)
    try:
        await until(lambda: rig.executor.in_flight() == 1, within_s=30)
        reads = rig.placer.lease_reads
        # A worker that dropped the agent without a word would be found out this way.
        await until(lambda: rig.placer.lease_reads > reads, within_s=rig.placer.recheck_s + 5)
        assert not call.done()
        assert [reason for *_, reason in rig.placed] == ["placed"]
    finally:
        call.cancel()
        await asyncio.wait({call})


async def test_a_worker_that_falls_silent_keeps_its_agent_until_the_key_expires(
    bus_url: str, cluster: str
) -> None:
    loop = asyncio.get_running_loop()
    async with executor_rig(
        bus_url, cluster, ttl_s=TTL, model_factory=silent, settings=SETTINGS
    ) as quiet:
        placer = quiet.placer
        first = await placer.route("agent_0")  # the only live worker: placed there
        assert first.worker_id == "rig-worker"
        async with executor_rig(
            bus_url,
            cluster,
            ttl_s=TTL,
            model_factory=echo,
            settings=SETTINGS,
            worker_id="rig-spare",
            session_id="session_spare",
        ) as spare:
            call = ask(quiet, 0)
            try:
                await until(lambda: quiet.executor.in_flight() == 1, within_s=30)
                # Its reports stop; the keeper still renews the agent's key (alive, but not
                # heard: a report subject lost, a directory write failing).
                await quiet.stop_reporting()
                reads = placer.lease_reads
                live = {w.worker_id for w in await placer._directory.live()}
                while "rig-worker" in live:  # its entry expires: it looks dead
                    await asyncio.sleep(0.05)
                    live = {w.worker_id for w in await placer._directory.live()}
                assert placer.lease_reads > reads  # not heard from: the host reads the key
                assert not call.done()
                assert placer.routes()["agent_0"] == first  # the key lives: it stays
                assert [reason for *_, reason in quiet.placed] == ["placed"]
                # Now its renewals stop as well (it died): the call moves once the key expires.
                held = quiet.executor._held[agent_key("session_rig", "agent_0")]
                await held.kept.stop()
                stopped = loop.time()
                async with asyncio.timeout(TTL + 10):
                    assert await call == "read 4 characters"
                assert loop.time() - stopped <= TTL + 2
            finally:
                call.cancel()
                await asyncio.wait({call})
            assert spare.executor.calls_run == 1
    agent, worker, epoch, reason = quiet.placed[-1]
    assert (agent, worker, reason) == ("agent_0", "rig-spare", "moved from rig-worker")
    assert epoch > first.epoch


async def test_the_bench_counts_the_hosts_reads_while_calls_wait(
    bus_url: str, cluster: str
) -> None:
    figures = await silent_call_reads(bus_url, cluster, calls=10, window_s=TTL, ttl_s=TTL)
    assert figures["silent_calls"] == 10
    # At most the once-a-TTL read of each call, never a read every check_s.
    assert figures["silent_call_key_reads_per_call_per_s"] <= 1.5 / TTL
