"""A worker process for the failover bench (the one it kills with SIGKILL), or a message sink.

``python -m loomkin.bench.failover_child worker BUS STORE CLUSTER TTL LATENCY [STALL]`` runs
a :class:`~loomkin.cluster.Worker` whose agents run the fault bench's scripted coders (a model
call takes ``LATENCY`` seconds; ``STALL``: ``HostOptions.stall_s``) and prints ``READY
worker_id pid``. With ``LOOMKIN_BENCH_LOG`` set it logs to stderr.
Each time it stops hosting a session it prints ``ENDED`` and a JSON object: the session,
the outcome (``done``, ``lost``, ``released``), and what its appends did (the oldest and
newest positions they wrote, the appends the store refused for a stale fence and their event ids).
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
from loomkin.cluster.writes import WriteLedger
from loomkin.testing.models import FunctionModel
from loomkin.tools.permissions import PermissionPolicy


async def worker(
    bus: str, store: str, cluster: str, ttl: float, latency: float, stall: float | None = None
) -> None:
    """Host sessions until SIGTERM (graceful) or SIGKILL (what the bench does)."""

    def factory(_role: object, name: str) -> FunctionModel:
        return FunctionModel(coder, name=f"scripted:{name}", latency_s=latency)

    ledger = WriteLedger()
    options = HostOptions(
        store_url=store,
        ttl_s=ttl,
        model_factory=factory,
        settings=SETTINGS,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=ensure_work,
        ledger=ledger,
        stall_s=stall,
    )
    node = Worker(bus, options, cluster=cluster, scan_s=0.2)
    await node.start()
    os.write(1, f"READY {node.worker_id} {os.getpid()}\n".encode())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    reporting = asyncio.create_task(_report_ends(node, ledger))
    try:
        await stop.wait()
    finally:
        reporting.cancel()
        await asyncio.wait([reporting])
        await node.close()


async def _report_ends(node: Worker, ledger: WriteLedger) -> None:
    """Print an ``ENDED`` line for every session this worker stopped hosting."""
    told: dict[str, int] = {}
    while True:
        await asyncio.sleep(0.05)
        for session_id, outcomes in list(node.outcomes.items()):
            for outcome in outcomes[told.get(session_id, 0) :]:
                writes = ledger.of(session_id)
                record = {
                    "session_id": session_id,
                    "outcome": outcome,
                    "written_from": writes.written_from,
                    "written_to": writes.written_to,
                    "refused_appends": writes.refused_appends,
                    "refused": writes.refused,
                }
                os.write(1, f"ENDED {json.dumps(record)}\n".encode())
            told[session_id] = len(outcomes)


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
    if os.environ.get("LOOMKIN_BENCH_LOG"):  # to see why a trial went wrong
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(message)s")
    else:
        logging.disable(logging.ERROR)
    if argv[0] == "worker":
        stall = float(argv[6]) if len(argv) > 6 else None
        asyncio.run(worker(argv[1], argv[2], argv[3], float(argv[4]), float(argv[5]), stall))
    else:
        asyncio.run(sink(argv[1], argv[2], int(argv[3])))


if __name__ == "__main__":
    main(sys.argv[1:])
