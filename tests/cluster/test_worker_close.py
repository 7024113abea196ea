"""A worker closed while it opens a session leaks nothing: the session moves to another.

The open is held inside its ``prepare`` hook (after the session's lease is taken and its
placement recorded) while ``close()`` runs. The lease TTL is long, so a lease the closed
worker kept would hold the session far beyond these tests' deadlines: the other worker
can only take it over because it was given back at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.faults_child import SETTINGS, coder
from loomkin.cluster import ClusterClient, HostOptions, Worker
from loomkin.cluster import worker as worker_module
from loomkin.errors import UserError
from loomkin.testing.models import FunctionModel
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from loomkin.service import Session

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

TTL = 60.0
"""Far longer than the deadlines below: nothing here may wait for a lease to expire."""
DEADLINE_S = 20.0


def options(pg_url: str, prepare: Callable[[Session], Awaitable[None]]) -> HostOptions:
    def factory(_role: object, name: str) -> FunctionModel:
        return FunctionModel(coder, name=f"scripted:{name}")

    return HostOptions(
        store_url=pg_url,
        ttl_s=TTL,
        model_factory=factory,
        settings=SETTINGS,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=prepare,
    )


class Gate:
    """A ``prepare`` hook that holds the first session it sees until :meth:`open` is called."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._go = asyncio.Event()

    def open(self) -> None:
        self._go.set()

    async def __call__(self, _session: Session) -> None:
        if not self.entered.is_set():
            self.entered.set()
            await self._go.wait()


async def closing(node: Worker) -> asyncio.Task[None]:
    """``node.close()`` in a task, returned once it has begun (stopped taking work)."""
    task = asyncio.create_task(node.close())
    await asyncio.sleep(0)  # the task's first step runs: it stops accepting, then waits
    assert not node.load().accepting
    return task


async def test_a_close_during_an_open_waits_for_it_and_hands_the_session_over(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    gate = Gate()
    first = Worker(bus_url, options(pg_url, gate), cluster=cluster, scan_s=0.2)
    other = Worker(bus_url, options(pg_url, gate), cluster=cluster, scan_s=0.2)
    await first.start()
    try:
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            opening = asyncio.create_task(
                first.open_session(str(project), goal="", model=None, title="", approve_all=True)
            )
            await gate.entered.wait()
            await other.start()
            closed = await closing(first)
            assert not opening.done()
            assert not closed.done()  # it waits for the open
            gate.open()
            session_id = await asyncio.wait_for(opening, DEADLINE_S)  # the caller is answered
            await asyncio.wait_for(closed, DEADLINE_S)
            assert first.outcomes == {session_id: ["released"]}
            assert first.hosted() == []
            # Given back at once (not after the TTL): the other worker takes it and ends it.
            await asyncio.wait_for(c.wait_done(session_id), DEADLINE_S)
            placement = await c.placement(session_id)
            await asyncio.wait_for(other.hosting_nothing(), DEADLINE_S)
    finally:
        await other.close()
        await first.close()
    assert placement.hosts == (first.worker_id, other.worker_id)
    assert placement.status == "done"
    assert other.outcomes == {session_id: ["done"]}


async def test_an_open_stuck_past_the_close_wait_is_cancelled_and_gives_its_lease_back(
    bus_url: str, cluster: str, pg_url: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "_CLOSE_WAIT_S", 0.5)
    gate = Gate()  # never opened: the first open never ends by itself
    first = Worker(bus_url, options(pg_url, gate), cluster=cluster, scan_s=0.2)
    other = Worker(bus_url, options(pg_url, gate), cluster=cluster, scan_s=0.2)
    await first.start()
    try:
        async with await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as c:
            opening = asyncio.create_task(
                first.open_session(str(project), goal="", model=None, title="", approve_all=True)
            )
            await gate.entered.wait()
            await other.start()
            await asyncio.wait_for(await closing(first), DEADLINE_S)
            with pytest.raises(UserError, match=r"shut down before the session was opened"):
                await opening
            assert first.hosted() == []
            assert first.load().sessions == 0
            # Recorded before it was held, so it is resumed elsewhere, at once.
            placements = await c.placements()
            assert len(placements) == 1
            session_id = placements[0].session_id
            await asyncio.wait_for(c.wait_done(session_id), DEADLINE_S)
            placement = await c.placement(session_id)
    finally:
        await other.close()
        await first.close()
    assert placement.hosts == (first.worker_id, other.worker_id)
    assert placement.status == "done"
