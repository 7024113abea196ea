"""``loomkin cluster status`` and ``cluster control`` on the real NATS server and Postgres.

What a user sees when there is nothing to see, or nothing to control: a line saying so,
at once (not an empty screen, not a request that waits 30 s for a worker that cannot exist).
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


async def loomkin(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loomkin.cli", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 25)  # a control waits 30 s at most
    assert proc.returncode is not None
    return proc.returncode, " ".join(out.decode().split())


async def test_status_of_an_empty_cluster_says_it_is_empty(
    bus_url: str, cluster: str, pg_url: str
) -> None:
    code, text = await loomkin(
        "cluster", "status", "--store", pg_url, "--bus", bus_url, "--cluster", cluster
    )
    assert code == 0, text
    assert f"no live workers on cluster {cluster} (start one with `loomkin worker`)" in text
    assert f"no sessions on cluster {cluster} yet" in text


async def test_control_of_a_session_the_cluster_never_ran_is_refused_at_once(
    bus_url: str, cluster: str, pg_url: str
) -> None:
    code, text = await loomkin(
        "cluster", "control", "session_nope", "ann", "pause",
        "--store", pg_url, "--bus", bus_url, "--cluster", cluster,
    )  # fmt: skip
    assert code == 2, text
    assert "error: the cluster never ran a session 'session_nope'" in text
    assert "Traceback" not in text
