"""``python -m loomkin.bench failover``: SIGKILL the worker hosting a session, measure takeover.

Each trial starts a session (three scripted coders appending lines with the real ``shell``
tool) on the cluster, waits until its first shell call completed, SIGKILLs the worker that
holds the session's lease, and starts a replacement worker. The takeover time runs from the
SIGKILL to the first event of the session committed after it (by another worker, since the
killed one is gone). Afterwards every session must finish with each completed tool call
once, no side-effect line twice, and every event seen before the kill still in the log.
Beside it: cross-worker one-way throughput over NATS (a publisher here, a decoding
subscriber in another process).
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
import time
from pathlib import Path
from typing import Any

from loomkin.cluster import ClusterClient
from loomkin.cluster.bus import connect
from loomkin.core.events import ToolCallCompleted
from loomkin.testing.cluster import scratch_cluster
from loomkin.testing.conformance import scratch_postgres_schema

__all__ = ["failover_table", "run_failover"]

_CHILD = [sys.executable, "-m", "loomkin.bench.failover_child"]


def _spawn(args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([*_CHILD, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if not line or line[0] != "READY":
        proc.kill()
        raise RuntimeError(f"a bench child did not start: {line}")
    return proc, line[1]


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdout is not None:
        proc.stdout.close()


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


async def _check(
    client: ClusterClient, trial: dict[str, Any], figures: collections.Counter[str]
) -> None:
    await asyncio.wait_for(client.wait_done(trial["session_id"]), 300)
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
    workers: int, trials: int, ttl: float, latency: float, bus: str, pg: str, messages: int
) -> dict[str, Any]:
    async with scratch_postgres_schema(pg) as schema, scratch_cluster(bus) as cluster:
        store = f"{pg}{'&' if '?' in pg else '?'}schema={schema}"

        def spawn() -> tuple[subprocess.Popen[bytes], str]:
            return _spawn(["worker", bus, store, cluster, str(ttl), str(latency)])

        procs: dict[str, subprocess.Popen[bytes]] = {}
        figures: collections.Counter[str] = collections.Counter()
        takeovers: list[float] = []
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
        finally:
            for proc in procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                proc.wait()
                _reap(proc)
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
        **rates,
    }


def run_failover(
    *,
    workers: int = 3,
    trials: int = 50,
    ttl: float = 10.0,
    latency: float = 0.2,
    bus: str = "nats://127.0.0.1:4222",
    postgres: str = "postgresql://postgres@127.0.0.1:5432/test",
    messages: int = 200_000,
) -> dict[str, Any]:
    """Run the bench; return its figures (see the module docstring)."""
    return asyncio.run(_run(workers, trials, ttl, latency, bus, postgres, messages))


def failover_table(result: dict[str, Any]) -> str:
    """The figures as aligned lines for a person."""
    return "\n".join(
        f"{key:<26} {value:.3f}" if isinstance(value, float) else f"{key:<26} {value}"
        for key, value in result.items()
    )
