"""A worker process for the failover bench (the one it kills with SIGKILL), or a message sink.

``python -m loomkin.bench.failover_child worker BUS STORE CLUSTER TTL LATENCY`` runs a
:class:`~loomkin.cluster.Worker` whose agents run the fault bench's scripted coders (a model
call takes ``LATENCY`` seconds) and prints ``READY worker_id pid``.
``… sink BUS SUBJECT N`` counts ``N`` one-way messages on ``SUBJECT`` and answers the last.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

from loomkin.bench.faults_child import SETTINGS, coder, ensure_work
from loomkin.cluster import HostOptions, Worker
from loomkin.cluster.bus import connect
from loomkin.testing.models import FunctionModel
from loomkin.tools.permissions import PermissionPolicy


async def worker(bus: str, store: str, cluster: str, ttl: float, latency: float) -> None:
    """Host sessions until SIGTERM (graceful) or SIGKILL (what the bench does)."""

    def factory(_role: object, name: str) -> FunctionModel:
        return FunctionModel(coder, name=f"scripted:{name}", latency_s=latency)

    options = HostOptions(
        store_url=store,
        ttl_s=ttl,
        model_factory=factory,
        settings=SETTINGS,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=ensure_work,
    )
    node = Worker(bus, options, cluster=cluster, scan_s=0.2)
    await node.start()
    os.write(1, f"READY {node.worker_id} {os.getpid()}\n".encode())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await node.close()


async def sink(bus: str, subject: str, count: int) -> None:
    """Receive ``count`` messages (decoding each), then answer the final request."""
    nc = await connect(bus, name="bench-sink")
    seen = 0
    done = asyncio.Event()

    async def on_message(msg: object) -> None:
        nonlocal seen
        data = getattr(msg, "data", b"")
        json.loads(data)
        seen += 1
        if seen >= count:
            done.set()

    await nc.subscribe(subject, cb=on_message, pending_msgs_limit=count + 10)
    await nc.flush()
    os.write(1, b"READY sink\n")
    await done.wait()
    os.write(1, f"GOT {seen}\n".encode())
    await nc.close()


def main(argv: list[str]) -> None:
    """Entry point (see the module docstring)."""
    logging.disable(logging.ERROR)
    if argv[0] == "worker":
        asyncio.run(worker(argv[1], argv[2], argv[3], float(argv[4]), float(argv[5])))
    else:
        asyncio.run(sink(argv[1], argv[2], int(argv[3])))


if __name__ == "__main__":
    main(sys.argv[1:])
