"""What placing an agent on a worker costs one model call: the same calls, local and placed.

A scripted model answers at once with ``CHUNKS`` text chunks. Each call is made twice in
turn: straight on the model, and through :class:`~loomkin.cluster.agents.PlacedModel` to an
executor that holds the agent (request, every chunk and the end each cross the NATS server,
on loopback). The figures are medians over ``calls`` of each, measured side by side, so the
difference is the placement's own cost per call; a real provider's latency comes on top of
both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import TYPE_CHECKING

from loomkin.agents.roles import resolve_role
from loomkin.bench.faults_child import SETTINGS
from loomkin.cluster.agents import AgentPlacer
from loomkin.cluster.bus import connect, open_buckets
from loomkin.cluster.directory import WorkerDirectory
from loomkin.cluster.executor import AgentExecutor
from loomkin.cluster.hosting import HostOptions
from loomkin.cluster.keeper import LeaseKeeper
from loomkin.cluster.leases import BusLeases
from loomkin.cluster.names import ClusterNames
from loomkin.cluster.placement import WorkerLoad
from loomkin.core.chat import UserMessage
from loomkin.llm.model import ModelRequest, ResponseBuilder
from loomkin.testing.models import FunctionModel, Reply

if TYPE_CHECKING:
    from loomkin.llm.model import Model

__all__ = ["CHUNKS", "placed_call_figures"]

CHUNKS = 20
"""Text chunks each scripted answer streams."""


def _answer(_request: ModelRequest) -> Reply:
    return Reply(text="x" * (8 * CHUNKS))


def _model(_role: object, name: str) -> Model:
    return FunctionModel(_answer, name=f"scripted:{name}", chunk_chars=8)


async def _one(model: Model, request: ModelRequest) -> float:
    builder = ResponseBuilder()
    start = time.perf_counter()
    async with contextlib.aclosing(model.stream(request)) as events:  # type: ignore[type-var]
        async for event in events:
            builder.add(event)
    elapsed = time.perf_counter() - start
    assert builder.build().text, "the scripted model answered nothing"
    return elapsed


async def placed_call_figures(bus: str, cluster: str, *, calls: int = 200) -> dict[str, float]:
    """Median seconds of a model call made locally and placed on a worker (ms in the keys)."""
    names = ClusterNames(cluster)
    ttl = 10.0
    options = HostOptions(store_url="", ttl_s=ttl, model_factory=_model, settings=SETTINGS)
    nc = await connect(bus, name="bench-placed-calls")
    keeper = LeaseKeeper(bus, names, "bench-executor", ttl_s=ttl)
    await keeper.start()
    executor: AgentExecutor | None = None
    try:
        buckets = await open_buckets(nc.jetstream(), names, ttl_s=ttl)
        executor = AgentExecutor(
            nc=nc,
            names=names,
            worker_id="bench-executor",
            leases=BusLeases(buckets.leases, "bench-executor"),
            keeper=keeper,
            options=options,
        )
        await executor.start()
        directory = WorkerDirectory(buckets.workers)
        await directory.report(WorkerLoad(worker_id="bench-executor"), host="bench", pid=0)

        async def journal(*_placed: object) -> None:
            return None

        placer = AgentPlacer(
            nc=nc,
            names=names,
            leases=BusLeases(buckets.leases, "bench-host"),
            directory=directory,
            session_id="session_bench",
            project="/",
            ttl_s=ttl,
            on_placed=journal,
        )
        role = resolve_role("coder")
        local = _model(role, "ann")
        placed = placer.wrap(_model)(role, "ann")
        request = ModelRequest(messages=(UserMessage(text="go"),), cache_key="agent_bench")
        await _one(placed, request)  # places the agent (a take request) before timing
        here: list[float] = []
        there: list[float] = []
        for _ in range(calls):
            here.append(await _one(local, request))
            there.append(await _one(placed, request))
        await placer.release_all()
    finally:
        if executor is not None:
            await executor.close()
        await keeper.close()
        await nc.close()
    local_ms = statistics.median(here) * 1000
    placed_ms = statistics.median(there) * 1000
    return {
        "local_call_ms": local_ms,
        "placed_call_ms": placed_ms,
        "placement_overhead_ms": placed_ms - local_ms,
    }


def run_placed_calls(bus: str, cluster: str, calls: int = 200) -> dict[str, float]:
    """Synchronous entry point of :func:`placed_call_figures`."""
    return asyncio.run(placed_call_figures(bus, cluster, calls=calls))
