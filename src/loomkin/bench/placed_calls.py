"""What placing an agent on a worker costs one model call: the same calls, local and placed.

A scripted model answers at once with ``CHUNKS`` text chunks. Each call is made twice in
turn: straight on the model, and through :class:`~loomkin.cluster.agents.PlacedModel` to an
executor that holds the agent (request, every chunk and the end each cross the NATS server,
on loopback). The figures are medians over ``calls`` of each, measured side by side, so the
difference is the placement's own cost per call; a real provider's latency comes on top of
both alike.

:func:`silent_call_reads` measures what calls that wait on their models cost the host on
the bus: ``calls`` agents each have a call in flight on one live worker, whose model does not
answer for ``window_s``; the figure is the host's reads of the agents' lease keys per second
meanwhile (the worker's liveness comes from its directory reports, which the host hears).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import TYPE_CHECKING

from loomkin.agents.roles import resolve_role
from loomkin.bench.faults_child import SETTINGS
from loomkin.core.chat import UserMessage
from loomkin.llm.model import ModelRequest
from loomkin.testing.cluster import executor_rig, streamed_text
from loomkin.testing.models import FunctionModel, Reply

if TYPE_CHECKING:
    from loomkin.llm.model import Model

__all__ = ["CHUNKS", "placed_call_figures", "silent_call_reads"]

CHUNKS = 20
"""Text chunks each scripted answer streams."""


def _answer(_request: ModelRequest) -> Reply:
    return Reply(text="x" * (8 * CHUNKS))


def _model(_role: object, name: str) -> Model:
    return FunctionModel(_answer, name=f"scripted:{name}", chunk_chars=8)


async def _one(model: Model, request: ModelRequest) -> float:
    start = time.perf_counter()
    text = await streamed_text(model, request)
    elapsed = time.perf_counter() - start
    assert text, "the scripted model answered nothing"
    return elapsed


async def placed_call_figures(bus: str, cluster: str, *, calls: int = 200) -> dict[str, float]:
    """Median seconds of a model call made locally and placed on a worker (ms in the keys)."""
    async with executor_rig(
        bus,
        cluster,
        ttl_s=10.0,
        model_factory=_model,
        settings=SETTINGS,
        worker_id="bench-executor",
        session_id="session_bench",
    ) as rig:
        role = resolve_role("coder")
        local = _model(role, "ann")
        placed = rig.placer.wrap(_model)(role, "ann")
        request = ModelRequest(messages=(UserMessage(text="go"),), cache_key="agent_bench")
        await _one(placed, request)  # places the agent (a take request) before timing
        here: list[float] = []
        there: list[float] = []
        for _ in range(calls):
            here.append(await _one(local, request))
            there.append(await _one(placed, request))
        await rig.placer.release_all()
    local_ms = statistics.median(here) * 1000
    placed_ms = statistics.median(there) * 1000
    return {
        "local_call_ms": local_ms,
        "placed_call_ms": placed_ms,
        "placement_overhead_ms": placed_ms - local_ms,
    }


async def silent_call_reads(
    bus: str, cluster: str, *, calls: int = 200, window_s: float = 20.0, ttl_s: float = 10.0
) -> dict[str, float]:
    """The host's lease-key reads per second while ``calls`` calls wait on a live worker.

    Counted over ``window_s`` once every call is in flight on the worker (a window of two
    TTLs or more includes the reads each call makes once a TTL whatever it hears).
    """
    answer = asyncio.Event()

    async def wait_then_answer(_request: ModelRequest) -> Reply:
        await answer.wait()
        return Reply(text="done")

    def silent(_role: object, name: str) -> Model:
        return FunctionModel(wait_then_answer, name=f"scripted:{name}")

    async with executor_rig(
        bus,
        cluster,
        ttl_s=ttl_s,
        model_factory=silent,
        settings=SETTINGS,
        worker_id="bench-silent",
        session_id="session_silent",
    ) as rig:
        role = resolve_role("coder")
        waiting = [
            asyncio.create_task(
                streamed_text(
                    rig.placer.wrap(silent)(role, f"a{n}"),
                    ModelRequest(messages=(UserMessage(text="go"),), cache_key=f"agent_{n}"),
                )
            )
            for n in range(calls)
        ]
        try:
            while rig.executor.in_flight() < calls:  # noqa: ASYNC110 - the calls' way there
                await asyncio.sleep(0.05)
            before = rig.placer.lease_reads
            await asyncio.sleep(window_s)
            reads = rig.placer.lease_reads - before
            answer.set()
            texts = await asyncio.gather(*waiting)
        finally:
            for task in waiting:
                task.cancel()
            await asyncio.wait(waiting)
        assert texts == ["done"] * calls, "a silent call was lost"
        await rig.placer.release_all()
    return {
        "silent_calls": calls,
        "silent_call_key_reads_per_s": reads / window_s,
        "silent_call_key_reads_per_call_per_s": reads / window_s / calls,
    }


def run_placed_calls(bus: str, cluster: str, calls: int = 200) -> dict[str, float]:
    """Synchronous entry point of :func:`placed_call_figures`."""
    return asyncio.run(placed_call_figures(bus, cluster, calls=calls))
