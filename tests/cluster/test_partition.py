"""Partitioned workers: frozen (SIGSTOP) or cut off from NATS while another takes over.

Frozen, a worker can neither heartbeat nor write, which is what a partition looks like to
the rest of the cluster. When it wakes up its agents' late appends must be refused by the
store's fence, it must stop hosting the session by itself, nothing it tried to write may
land, and the session must finish once, on the other worker, with nothing run twice. A
worker cut off from NATS only (it still reaches Postgres) must stop its agents itself once
no renewal got through for the TTL. And a worker merely busy for longer than the TTL keeps
its session: its leases are renewed from a thread of their own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.failover import (
    _check,
    _check_partition,
    _Ends,
    _partition,
    _reap,
    _spawn,
)
from loomkin.bench.faults_child import SETTINGS, coder, ensure_work
from loomkin.cluster import ClusterClient, HostOptions, Worker
from loomkin.core.events import ToolCallStarted
from loomkin.testing.models import FunctionModel
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]

TTL = 1.5


@pytest.mark.parametrize("watchdog", [True, False], ids=["watchdog", "fence-only"])
async def test_a_thawed_partitioned_worker_is_refused_and_stops_hosting(
    bus_url: str, cluster: str, pg_url: str, tmp_path: Path, watchdog: bool
) -> None:
    """With the stall watchdog (the default) the thawed worker stops its agents as soon as it
    runs, so few of them (often none) even try to write; without it they go on until the
    store refuses them, which shows the fence alone keeps the log right."""
    stall = [] if watchdog else ["60"]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for _ in range(2):
            args = ["worker", bus_url, pg_url, cluster, str(TTL), "0.1", *stall]
            proc, worker_id = _spawn(args)
            procs[worker_id] = proc
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            project = tmp_path / "p"
            project.mkdir()
            trial = await _partition(c, project, procs, TTL)
            figures: collections.Counter[str] = collections.Counter()
            await _check(c, trial, figures)
            log = await c.history(trial["session_id"])
            await _check_partition(trial, {r.event_id for r in log}, figures)
            placement = await c.placement(trial["session_id"])
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)  # should the test fail while it is frozen
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            _reap(proc)
    ended = trial["ended"]
    assert ended is not None, "the thawed worker still hosts the session it lost"
    assert ended["outcome"] == "lost"
    if not watchdog:
        assert ended["refused_appends"] >= 1  # its agents went on where they were: refused
    assert figures["stale_appends_refused"] == ended["refused_appends"]
    assert figures["stale_appends_landed"] == 0
    assert figures["stale_holders_kept_hosting"] == 0
    assert len(placement.hosts) == 2  # it moved once, to the other worker
    assert placement.worker_id != placement.hosts[0]
    assert placement.status == "done"
    assert figures["duplicate_tool_calls"] == 0
    assert figures["duplicate_side_effects"] == 0
    assert figures["lost_events"] == 0
    assert figures["unfinished_runs"] == 0


async def test_a_worker_whose_loop_is_blocked_longer_than_the_ttl_keeps_its_session(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    """Its lease is renewed from the keeper's own thread, so a busy loop (a long replay, a
    loaded machine) does not hand a session it runs well to another worker."""

    def factory(_role: object, name: str) -> FunctionModel:
        return FunctionModel(coder, name=f"scripted:{name}", latency_s=0.05)

    options = HostOptions(
        store_url=pg_url,
        ttl_s=TTL,
        model_factory=factory,
        settings=SETTINGS,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=ensure_work,
    )
    busy = Worker(bus_url, options, cluster=cluster, scan_s=0.2)
    other = Worker(bus_url, options, cluster=cluster, scan_s=0.2)
    await busy.start()
    try:
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            session_id, worker_id = await c.start_session(str(project), "", approve_all=True)
            assert worker_id == busy.worker_id
            await other.start()
            async with contextlib.aclosing(c.follow(session_id)) as events:
                async for recorded in events:
                    if isinstance(recorded.event, ToolCallStarted):
                        break
            # Blocks this process's event loop (both workers' and the agents') for three
            # TTLs, as a long synchronous replay would; the keeper's thread goes on renewing.
            time.sleep(3 * TTL)  # noqa: ASYNC251 - the blocked loop is what is tested
            await c.wait_done(session_id)
            placement = await c.placement(session_id)
            await asyncio.wait_for(busy.hosting_nothing(), 30)
    finally:
        await other.close()
        await busy.close()
    assert placement.hosts == (busy.worker_id,)
    assert busy.outcomes[session_id] == ["done"]
    assert other.outcomes == {}


class Partition:
    """A TCP proxy in front of the NATS server that can stop forwarding (a partition).

    Connections stay open while it is cut (as when a network drops packets), so the worker
    behind it notices only that nothing gets through; healing forwards what was held.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("nats://").rpartition(":")
        self._upstream = (host or "127.0.0.1", int(port))
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"nats://127.0.0.1:{port}"

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        self.flowing.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in self._writers:
            writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)


async def test_a_worker_cut_off_from_nats_stops_its_agents_itself(
    bus_url: str, cluster: str, pg_url: str, tmp_path: Path
) -> None:
    """A real partition: the worker still reaches Postgres but not NATS. No renewal gets
    through, so after the TTL it stops its agents itself (the stall watchdog) while another
    worker takes the session over; nothing it wrote after that lands, nothing runs twice."""
    partition = Partition(bus_url)
    cut_off_bus = await partition.start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        # In a thread: the proxy runs on this loop, and the worker connects through it.
        args = ["worker", cut_off_bus, pg_url, cluster, str(TTL), "0.2"]
        proc, cut_off = await asyncio.to_thread(_spawn, args)
        procs[cut_off] = proc
        proc, other = await asyncio.to_thread(_spawn, [*args[:1], bus_url, *args[2:]])
        procs[other] = proc
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            for n in range(2):  # both idle: once one reports a session, the next goes to the other
                project = tmp_path / f"p{n}"
                project.mkdir()
                session_id, worker_id = await c.start_session(str(project), "", approve_all=True)
                if worker_id == cut_off:
                    break
                while not any(w.sessions for w in await c.workers()):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert worker_id == cut_off
            async with contextlib.aclosing(c.follow(session_id)) as events:
                async for recorded in events:
                    if isinstance(recorded.event, ToolCallStarted):
                        break
            seen = [r.event_id for r in await c.history(session_id)]
            partition.flowing.clear()
            ends = _Ends.of(procs[cut_off])
            assert ends is not None
            ended = await asyncio.wait_for(ends.ended(session_id), 30)  # without NATS
            await c.wait_done(session_id)
            trial = {
                "session_id": session_id,
                "seen": seen,
                "project": project,
                "ended": ended,
                "survivor": procs[other],
            }
            figures: collections.Counter[str] = collections.Counter()
            await _check(c, trial, figures)
            log = await c.history(session_id)
            await _check_partition(trial, {r.event_id for r in log}, figures)
            placement = await c.placement(session_id)
    finally:
        await partition.close()
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            _reap(proc)
    assert ended["outcome"] == "lost"
    assert placement.hosts == (cut_off, other)
    assert placement.status == "done"
    assert figures["stale_appends_landed"] == 0
    assert figures["stale_holders_kept_hosting"] == 0
    assert figures["duplicate_tool_calls"] == 0
    assert figures["duplicate_side_effects"] == 0
    assert figures["lost_events"] == 0
    assert figures["unfinished_runs"] == 0
