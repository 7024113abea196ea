"""``python -m loomkin.bench failover``: SIGKILL the worker hosting a session, measure takeover.

Each trial starts a session (three scripted coders appending lines with the real ``shell``
tool) on the cluster, waits until its first shell call completed, SIGKILLs the worker that
holds the session's lease, and starts a replacement worker. The takeover time runs from the
SIGKILL to the first event of the session committed after it (by another worker, since the
killed one is gone). Afterwards every session must finish with each completed tool call
once, no side-effect line twice, and every event seen before the kill still in the log.
Beside it: cross-worker one-way throughput over NATS (a publisher here, a decoding
subscriber in another process).

With ``--partitions N`` it then runs N partition trials: the worker holding a session's lease
is frozen with SIGSTOP while a model call of the session is in flight (it can neither
heartbeat nor write: a partition), and thawed with SIGCONT once another worker resumed the
session (its lease carries a newer store epoch) and committed an event; the partition
takeover time runs from the SIGSTOP to then. Its agents' late appends must be refused by the
store's fence (``stale_appends_refused`` counts the refused store appends,
``stale_appends_landed`` those of their events found in the log afterwards, plus any event
it wrote at or after the survivor's first), and it must stop hosting the session by itself
(``stale_holders_kept_hosting``: still hosting it TTL + ``ENDED_WAIT_S`` after the thaw).
Each session must then finish with the same checks as a kill. ``extra_moves`` counts moves
of any trial's session beyond the one the trial caused (a live worker losing a lease).

With ``--agent-kills N`` it runs N trials that SIGKILL a worker while it streams a model
call of an agent whose session another worker hosts (per-agent placement). The agent
failover time runs from the SIGKILL to the ``AgentPlaced`` event that moves the agent
away from the dead worker (its call then runs again there). ``agent_kills_missed`` counts
sessions that finished before such a call was caught in flight, ``agents_not_moved`` kills
after which no move was seen within two minutes. The same checks as a kill follow.
Last, :mod:`loomkin.bench.placed_calls` measures what placing an agent costs one model call,
and how often a host reads agents' lease keys while 200 calls wait silently on a live worker
(``silent_call_key_reads_per_s``, over two TTLs).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loomkin.bench.placed_calls import placed_call_figures, silent_call_reads
from loomkin.cluster import ClusterClient
from loomkin.cluster.bus import connect
from loomkin.core.events import (
    AgentPlaced,
    ModelCallCompleted,
    ModelCallStarted,
    ToolCallCompleted,
)
from loomkin.testing.cluster import scratch_cluster
from loomkin.testing.conformance import scratch_postgres_schema

__all__ = ["ENDED_WAIT_S", "failover_table", "run_failover"]

_CHILD = [sys.executable, "-m", "loomkin.bench.failover_child"]

ENDED_WAIT_S = 30.0
"""How long a thawed worker gets to stop hosting the session it lost (beyond the TTL)."""


def _spawn(args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([*_CHILD, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if not line or line[0] != "READY":
        proc.kill()
        raise RuntimeError(f"a bench child did not start: {line}")
    _Ends.watch(proc)
    return proc, line[1]


def _reap(proc: subprocess.Popen[bytes]) -> None:
    ends = _Ends.of(proc)
    if ends is not None:
        ends.join()
    if proc.stdout is not None:
        proc.stdout.close()


@dataclass(eq=False)
class _Ends:
    """The ``ENDED`` records a worker child prints, read by a thread (the pipe blocks)."""

    proc: subprocess.Popen[bytes]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _by_pid: typing.ClassVar[dict[int, _Ends]] = {}

    @classmethod
    def watch(cls, proc: subprocess.Popen[bytes]) -> None:
        ends = cls(proc)
        ends._thread = threading.Thread(target=ends._read, name=f"ends:{proc.pid}", daemon=True)
        cls._by_pid[proc.pid] = ends
        ends._thread.start()

    @classmethod
    def of(cls, proc: subprocess.Popen[bytes]) -> _Ends | None:
        return cls._by_pid.get(proc.pid)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # ends when the child exits
            if line.startswith(b"ENDED "):
                record = json.loads(line[len(b"ENDED ") :])
                self.records.setdefault(str(record["session_id"]), []).append(record)

    def join(self) -> None:
        """Wait for the reader (call after the child exited)."""
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._by_pid.pop(self.proc.pid, None)

    async def ended(self, session_id: str) -> dict[str, Any]:
        """The first record of the child's hosting ``session_id`` ending (waits for it)."""
        while not self.records.get(session_id):  # noqa: ASYNC110 - filled by the reader thread
            await asyncio.sleep(0.05)
        return self.records[session_id][0]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _trial(
    client: ClusterClient, project: Path, spawn: Any, procs: dict[str, subprocess.Popen[bytes]]
) -> dict[str, Any]:
    session_id, _ = await client.start_session(str(project), "", approve_all=True)
    seen: list[str] = []
    while True:  # until the first shell call completed (mid-run)
        events = await client.history(session_id)
        seen = [r.event_id for r in events]
        if any(isinstance(r.event, ToolCallCompleted) for r in events):
            break
        await asyncio.sleep(0.01)
    holder = await client.holder(session_id)
    assert holder is not None
    victim = str(holder["worker"])
    proc = procs.pop(victim)
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    proc.wait()
    _reap(proc)
    after = (await client.history(session_id))[-1].position
    seen = [r.event_id for r in await client.history(session_id)]
    while not await client.history(session_id, after=after):  # noqa: ASYNC110 - polls the store
        await asyncio.sleep(0.01)
    takeover = time.monotonic() - killed_at
    # The replacement starts after the measurement: its start-up (seconds of imports on a
    # 2-core machine) would otherwise compete with the takeover it is not part of.
    replacement, worker_id = await asyncio.to_thread(spawn)
    procs[worker_id] = replacement
    return {"session_id": session_id, "takeover_s": takeover, "seen": seen, "project": project}


async def _agent_trial(
    client: ClusterClient,
    project: Path,
    spawn: Any,
    procs: dict[str, subprocess.Popen[bytes]],
    *,
    wait_s: float = 120.0,
) -> dict[str, Any] | None:
    """SIGKILL a worker running a model call of an agent whose session is hosted elsewhere.

    ``None`` when the session finished before such a call was caught in flight.
    """
    session_id, _ = await client.start_session(str(project), "", approve_all=True)
    while True:
        log = await client.history(session_id)
        holder = await client.holder(session_id)
        host = str(holder["worker"]) if holder else None
        where: dict[str, str] = {}
        open_calls: dict[str, str] = {}
        for recorded in log:
            match recorded.event:
                case AgentPlaced(agent_id=agent, worker=worker):
                    where[agent] = worker
                case ModelCallStarted(call_id=call, agent_id=agent):
                    open_calls[call] = agent
                case ModelCallCompleted(call_id=call):
                    open_calls.pop(call, None)
        victims = sorted(
            {where[a] for a in open_calls.values() if a in where} - {host} & set(procs)
        )
        if victims:
            break
        if (await client.placement(session_id)).status == "done":
            return None
        await asyncio.sleep(0.005)
    victim = victims[0]
    proc = procs.pop(victim)
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    proc.wait()
    _reap(proc)
    seen = [r.event_id for r in log]
    after = log[-1].position
    moved = f"moved from {victim}"
    takeover: float | None = None
    while time.monotonic() - killed_at < wait_s:
        fresh = await client.history(session_id, after=after)
        if any(isinstance(r.event, AgentPlaced) and r.event.reason == moved for r in fresh):
            takeover = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.01)
    replacement, worker_id = await asyncio.to_thread(spawn)
    procs[worker_id] = replacement
    return {"session_id": session_id, "takeover_s": takeover, "seen": seen, "project": project}


async def _check(
    client: ClusterClient, trial: dict[str, Any], figures: collections.Counter[str]
) -> None:
    async with asyncio.timeout(300):
        await client.wait_done(trial["session_id"])
    placement = await client.placement(trial["session_id"])
    figures["unfinished_runs"] += placement.status != "done"
    log = await client.history(trial["session_id"])
    ids = {r.event_id for r in log}
    figures["lost_events"] += sum(1 for e in trial["seen"] if e not in ids)
    calls = collections.Counter(
        r.event.call_id for r in log if isinstance(r.event, ToolCallCompleted)
    )
    figures["duplicate_tool_calls"] += sum(n - 1 for n in calls.values())
    lines = (trial["project"] / "side.txt").read_text().split()
    figures["duplicate_side_effects"] += len(lines) - len(set(lines))


async def _partition(
    client: ClusterClient,
    project: Path,
    procs: dict[str, subprocess.Popen[bytes]],
    ttl: float,
) -> dict[str, Any]:
    """SIGSTOP the holder of a running session until another worker took it, then SIGCONT."""
    session_id, _ = await client.start_session(str(project), "", approve_all=True)
    while not any(  # noqa: ASYNC110 - polls the store until mid-run
        isinstance(r.event, ToolCallCompleted) for r in await client.history(session_id)
    ):
        await asyncio.sleep(0.01)
    # Then freeze it with a model call in flight: its agents have a step due when it wakes.
    after = (await client.history(session_id))[-1].position
    while not any(  # noqa: ASYNC110 - polls the store
        isinstance(r.event, ModelCallStarted) for r in await client.history(session_id, after=after)
    ):
        await asyncio.sleep(0.005)
    holder = await client.holder(session_id)
    assert holder is not None
    victim = str(holder["worker"])
    victim_epoch = _epoch(holder)
    proc = procs[victim]
    proc.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        log = await client.history(session_id)
        seen = [r.event_id for r in log]
        after = log[-1].position
        deadline = stopped_at + ttl + 120
        while True:  # until another worker resumed it (a newer store epoch) and wrote
            holder = await client.holder(session_id)
            resumed = (
                holder is not None
                and holder.get("worker") != victim
                and _epoch(holder) > victim_epoch
            )
            if resumed and await client.history(session_id, after=after):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"session {session_id} was not taken over from {victim}")
            await asyncio.sleep(0.01)
        takeover = time.monotonic() - stopped_at
    finally:
        proc.send_signal(signal.SIGCONT)
    assert holder is not None
    ended: dict[str, Any] | None = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ttl + ENDED_WAIT_S):
            ended = await _ended(proc, session_id)
    return {
        "session_id": session_id,
        "takeover_s": takeover,
        "seen": seen,
        "project": project,
        "ended": ended,
        "survivor": procs[str(holder["worker"])],
    }


def _epoch(holder: dict[str, object]) -> int:
    """The store epoch a lease holder published (0: not yet resumed)."""
    epoch = holder.get("epoch")
    return epoch if isinstance(epoch, int) else 0


async def _ended(proc: subprocess.Popen[bytes], session_id: str) -> dict[str, Any]:
    ends = _Ends.of(proc)
    assert ends is not None
    return await ends.ended(session_id)


async def _check_partition(
    trial: dict[str, Any], log_ids: set[str], figures: collections.Counter[str]
) -> None:
    """Count what the thawed worker's late writes did, and whether it stopped hosting.

    Call once the session is done. Landed: a refused event found in the log, or any event
    the thawed worker wrote at or after the survivor's first (the fence orders them).
    """
    ended = trial["ended"]
    if ended is None:
        figures["stale_holders_kept_hosting"] += 1
        return
    figures["stale_appends_refused"] += ended["refused_appends"]
    landed = sum(1 for event_id in ended["refused"] if event_id in log_ids)
    survivor: dict[str, Any] | None = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ENDED_WAIT_S):
            survivor = await _ended(trial["survivor"], trial["session_id"])
    if survivor is None or not survivor["written_from"]:
        raise RuntimeError(f"the survivor of {trial['session_id']} reported no writes")
    landed += ended["written_to"] >= survivor["written_from"]
    figures["stale_appends_landed"] += landed


async def _throughput(bus: str, messages: int) -> dict[str, float]:
    subject = f"bench.{os.getpid()}.inbox"
    proc, _ = _spawn(["sink", bus, subject, str(messages)])
    nc = await connect(bus, name="bench-source")
    try:
        payload = {"from": "agent-a", "to": "agent-b", "kind": "message", "text": "x" * 64}
        start = time.perf_counter()
        for i in range(messages):
            payload["seq"] = i  # type: ignore[assignment]
            await nc.publish(subject, json.dumps(payload).encode())
        await nc.flush()
        await asyncio.to_thread(proc.wait)
        _reap(proc)
        elapsed = time.perf_counter() - start
        one = time.perf_counter()
        for _ in range(200):  # round-trip latency through the server (request/reply)
            sub = await nc.subscribe(f"{subject}.echo", max_msgs=1)
            await nc.publish(f"{subject}.echo", b"{}")
            await sub.next_msg(timeout=2)
        rtt = (time.perf_counter() - one) / 200
    finally:
        await nc.close()
    return {"cross_worker_msgs_per_s": messages / elapsed, "cross_worker_one_way_ms": rtt * 1000}


async def _run(
    workers: int,
    trials: int,
    partitions: int,
    ttl: float,
    latency: float,
    bus: str,
    pg: str,
    messages: int,
    agent_kills: int = 0,
) -> dict[str, Any]:
    async with scratch_postgres_schema(pg) as schema, scratch_cluster(bus) as cluster:
        store = f"{pg}{'&' if '?' in pg else '?'}schema={schema}"

        def spawn() -> tuple[subprocess.Popen[bytes], str]:
            return _spawn(["worker", bus, store, cluster, str(ttl), str(latency)])

        procs: dict[str, subprocess.Popen[bytes]] = {}
        figures: collections.Counter[str] = collections.Counter()
        takeovers: list[float] = []
        partition_takeovers: list[float] = []
        agent_takeovers: list[float] = []
        try:
            for _ in range(workers):
                proc, worker_id = spawn()
                procs[worker_id] = proc
            async with await ClusterClient.connect(
                bus, store, cluster=cluster, ttl_s=ttl
            ) as client:
                with tempfile.TemporaryDirectory() as tmp:
                    done = []
                    for n in range(trials):
                        project = Path(tmp) / f"p{n}"
                        project.mkdir()
                        trial = await _trial(client, project, spawn, procs)
                        takeovers.append(trial["takeover_s"])
                        done.append(trial)
                    for trial in done:
                        await _check(client, trial, figures)
                        figures["extra_moves"] += await _extra_moves(client, trial)
                    for n in range(agent_kills):
                        project = Path(tmp) / f"a{n}"
                        project.mkdir()
                        caught = await _agent_trial(client, project, spawn, procs)
                        if caught is None:
                            figures["agent_kills_missed"] += 1
                            continue
                        if caught["takeover_s"] is None:
                            figures["agents_not_moved"] += 1
                        else:
                            agent_takeovers.append(caught["takeover_s"])
                        await _check(client, caught, figures)
                    for n in range(partitions):
                        project = Path(tmp) / f"q{n}"
                        project.mkdir()
                        trial = await _partition(client, project, procs, ttl)
                        partition_takeovers.append(trial["takeover_s"])
                        await _check(client, trial, figures)
                        figures["extra_moves"] += await _extra_moves(client, trial)
                        log = await client.history(trial["session_id"])
                        await _check_partition(trial, {r.event_id for r in log}, figures)
        finally:
            for proc in procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                proc.wait()
                _reap(proc)
        calls = await placed_call_figures(bus, cluster)
        silent = await silent_call_reads(bus, cluster, window_s=2 * ttl, ttl_s=ttl)
        rates = await _throughput(bus, messages)
    return {
        "workers": workers,
        "kills": trials,
        "lease_ttl_s": ttl,
        "failover_p50_s": _percentile(takeovers, 0.5),
        "failover_p99_s": _percentile(takeovers, 0.99),
        "failover_max_s": max(takeovers, default=float("nan")),
        "duplicate_tool_calls": figures["duplicate_tool_calls"],
        "duplicate_side_effects": figures["duplicate_side_effects"],
        "lost_events": figures["lost_events"],
        "unfinished_runs": figures["unfinished_runs"],
        "agent_kills": len(agent_takeovers) + figures["agents_not_moved"],
        "agent_kills_missed": figures["agent_kills_missed"],
        "agents_not_moved": figures["agents_not_moved"],
        "agent_failover_p50_s": _percentile(agent_takeovers, 0.5),
        "agent_failover_p99_s": _percentile(agent_takeovers, 0.99),
        "agent_failover_max_s": max(agent_takeovers, default=float("nan")),
        "partitions": partitions,
        "partition_takeover_p50_s": _percentile(partition_takeovers, 0.5),
        "partition_takeover_max_s": max(partition_takeovers, default=float("nan")),
        "stale_appends_refused": figures["stale_appends_refused"],
        "stale_appends_landed": figures["stale_appends_landed"],
        "stale_holders_kept_hosting": figures["stale_holders_kept_hosting"],
        "extra_moves": figures["extra_moves"],
        **rates,
        **calls,
        **silent,
    }


async def _extra_moves(client: ClusterClient, trial: dict[str, Any]) -> int:
    """Moves of the session beyond the one the trial caused.

    A lease that expired on a live worker (its heartbeats starved) shows here.
    """
    placement = await client.placement(trial["session_id"])
    return max(0, len(placement.hosts) - 2)


def run_failover(
    *,
    workers: int = 3,
    trials: int = 50,
    partitions: int = 0,
    ttl: float = 10.0,
    latency: float = 0.2,
    bus: str = "nats://127.0.0.1:4222",
    postgres: str = "postgresql://postgres@127.0.0.1:5432/test",
    messages: int = 200_000,
    agent_kills: int = 0,
) -> dict[str, Any]:
    """Run the bench; return its figures (see the module docstring)."""
    return asyncio.run(
        _run(workers, trials, partitions, ttl, latency, bus, postgres, messages, agent_kills)
    )


def failover_table(result: dict[str, Any]) -> str:
    """The figures as aligned lines for a person."""
    return "\n".join(
        f"{key:<26} {value:.3f}" if isinstance(value, float) else f"{key:<26} {value}"
        for key, value in result.items()
    )
