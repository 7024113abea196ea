"""A worker killed with SIGKILL mid-run: another worker resumes its session from the log."""

from __future__ import annotations

import collections
import contextlib
import signal
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.failover import _agent_trial, _check, _reap, _spawn, _trial
from loomkin.cluster import ClusterClient

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]

TTL = 1.5


@contextlib.contextmanager
def worker_processes(
    count: int, spawn: Callable[[], tuple[subprocess.Popen[bytes], str]]
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """``count`` worker processes by id (the dict follows kills and replacements); stopped after."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for _ in range(count):
            proc, worker_id = spawn()
            procs[worker_id] = proc
        yield procs
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            _reap(proc)


async def test_a_killed_workers_session_finishes_elsewhere_with_nothing_run_twice(
    bus_url: str, cluster: str, pg_url: str, tmp_path: Path
) -> None:
    def spawn() -> tuple[subprocess.Popen[bytes], str]:
        return _spawn(["worker", bus_url, pg_url, cluster, str(TTL), "0.1"])

    with worker_processes(2, spawn) as procs:
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            project = tmp_path / "p"
            project.mkdir()
            trial = await _trial(c, project, spawn, procs)
            figures: collections.Counter[str] = collections.Counter()
            await _check(c, trial, figures)
            placement = await c.placement(trial["session_id"])
    assert len(placement.hosts) >= 2  # it moved
    assert placement.status == "done"
    assert figures["duplicate_tool_calls"] == 0
    assert figures["duplicate_side_effects"] == 0
    assert figures["lost_events"] == 0
    assert figures["unfinished_runs"] == 0


async def test_a_killed_workers_agents_move_and_their_session_finishes_on_its_host(
    bus_url: str, cluster: str, pg_url: str, tmp_path: Path
) -> None:
    def spawn() -> tuple[subprocess.Popen[bytes], str]:
        return _spawn(["worker", bus_url, pg_url, cluster, str(TTL), "0.2"])

    figures: collections.Counter[str] = collections.Counter()
    trial = None
    with worker_processes(3, spawn) as procs:
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            for attempt in range(3):  # a run may finish before a call is caught in flight
                project = tmp_path / f"p{attempt}"
                project.mkdir()
                trial = await _agent_trial(c, project, spawn, procs, wait_s=60)
                if trial is not None:
                    break
            assert trial is not None, "no model call was caught in flight on a worker"
            await _check(c, trial, figures)
            placement = await c.placement(trial["session_id"])
    assert trial["takeover_s"] is not None, "the dead worker's agent never moved"
    assert trial["takeover_s"] < TTL + 5  # the lease expires after one TTL
    assert placement.hosts == (placement.worker_id,)  # the session itself never moved
    assert placement.status == "done"
    assert figures["duplicate_tool_calls"] == 0
    assert figures["duplicate_side_effects"] == 0
    assert figures["lost_events"] == 0
    assert figures["unfinished_runs"] == 0
