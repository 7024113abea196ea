"""A partitioned worker: frozen (SIGSTOP) while another takes its session over, then thawed.

It can neither heartbeat nor write while frozen, which is what a partition looks like to the
rest of the cluster. When it wakes up its agents' late appends must be refused by the
store's fence, it must stop hosting the session by itself, nothing it tried to write may
land, and the session must finish once, on the other worker, with nothing run twice.
"""

from __future__ import annotations

import collections
import contextlib
import signal
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.failover import _check, _check_partition, _partition, _reap, _spawn
from loomkin.cluster import ClusterClient

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]

TTL = 1.5


async def test_a_thawed_partitioned_worker_is_refused_and_stops_hosting(
    bus_url: str, cluster: str, pg_url: str, tmp_path: Path
) -> None:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for _ in range(2):
            proc, worker_id = _spawn(["worker", bus_url, pg_url, cluster, str(TTL), "0.1"])
            procs[worker_id] = proc
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            project = tmp_path / "p"
            project.mkdir()
            trial = await _partition(c, project, procs, TTL)
            figures: collections.Counter[str] = collections.Counter()
            await _check(c, trial, figures)
            log = await c.history(trial["session_id"])
            _check_partition(trial, {r.event_id for r in log}, figures)
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
