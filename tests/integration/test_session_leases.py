"""Issue #15: one writer per session, with fencing, on SQLite and on the real Postgres server.

Two runtimes in one test process stand for two processes (each has its own holder id): the
second cannot resume a session the first hosts (the message names the holder), it can take it
over (then the first is fenced: its appends are refused and its agents stop), a holder that
died elsewhere is waited out for its TTL, one on this host whose process is gone is taken over
at once, and closing a runtime gives its leases back.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.events import ModelCallStarted
from loomkin.errors import LeaseHeld, StaleEpoch
from loomkin.ids import SessionId
from loomkin.persistence import open_store
from loomkin.service import Loomkin
from loomkin.testing.models import FunctionModel, Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.llm.model import ModelRequest
    from loomkin.service import Session

pytestmark = pytest.mark.timeout(60)

SETTINGS = SessionSettings(bootstrap_orienter=False)


def _idle(_role: object, _name: str) -> ScriptedModel:
    return ScriptedModel([])


async def _idle_session(store: str, project: Path) -> tuple[Loomkin, Session]:
    lk = await Loomkin.open(store)
    session = await lk.open_session(project, model_factory=_idle, settings=SETTINGS)
    return lk, session


async def test_a_second_runtime_is_refused_with_the_holder_named(
    store_url: str, project: Path
) -> None:
    first, session = await _idle_session(store_url, project)
    try:
        lease = session.lease()
        assert lease is not None
        assert (lease.host, lease.pid) == (socket.gethostname(), os.getpid())
        second = await Loomkin.open(store_url)
        try:
            with pytest.raises(LeaseHeld) as refused:
                await second.resume_session(session.session_id, model_factory=_idle)
            message = str(refused.value)
            assert lease.holder in message
            assert f"pid {os.getpid()}" in message
            assert socket.gethostname() in message
            assert second.sessions()[0].open is False  # nothing of it was set up here
        finally:
            await second.close()
        await session.send("still mine")  # the first one still writes
    finally:
        await first.close()


async def test_take_over_fences_the_old_holder_and_stops_its_agents(
    store_url: str, project: Path
) -> None:
    async def stuck(_request: ModelRequest) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    first = await Loomkin.open(store_url)
    session = await first.open_session(
        project, model_factory=lambda _r, _n: FunctionModel(stuck), settings=SETTINGS
    )
    await session.spawn_agent("worker", "coder")
    await session.send("work", to="worker")
    async with first.events(session.session_id, after=0) as events:
        async for recorded in events:
            if isinstance(recorded.event, ModelCallStarted):
                break
    second = await Loomkin.open(store_url)
    try:
        taken = await second.resume_session(
            session.session_id,
            model_factory=lambda _r, _n: ScriptedModel([Reply(text="picked up")]),
            settings=SETTINGS,
            take_over=True,
        )
        before = await taken.history()
        with pytest.raises(StaleEpoch, match="taken over"):
            await session.send("one more")  # refused by the store: nothing is written
        with pytest.raises(StaleEpoch):
            await session.wait_idle()  # the first runtime's agents of that session stopped
        assert session.lease() is None
        await taken.wait_idle()
        after = await taken.history()
        assert not any(r.event.kind == "user_message_posted" for r in after[len(before) :])
        assert "one more" not in str([r.event for r in after])
        assert taken.agent("worker").status == "idle"  # the new holder finished the work
    finally:
        await second.close()
        await first.close()


async def test_a_dead_holders_lease_elsewhere_expires_after_its_ttl(
    store_url: str, project: Path
) -> None:
    lk, session = await _idle_session(store_url, project)
    session_id = SessionId(session.session_id)
    await lk.close()
    store = await open_store(store_url)
    again = await Loomkin.open(store)  # (it closes the store when it closes)
    try:
        # Another machine holds it now (as far as this one can tell, it may be alive) ...
        await store.acquire_lease(session_id, "elsewhere-1", ttl_s=15, host="other-host", pid=1)
        with pytest.raises(LeaseHeld, match="other-host"):
            await again.resume_session(session_id, model_factory=_idle)
        # ... and once its lease lapsed (its holder stopped renewing 100 s ago), it is free.
        await store.acquire_lease(
            session_id,
            "elsewhere-2",
            ttl_s=15,
            host="other-host",
            pid=1,
            take_over=True,
            now=time.time() - 100,
        )
        resumed = await again.resume_session(session_id, model_factory=_idle)
        lease = resumed.lease()
        assert lease is not None
        assert lease.host == socket.gethostname()
    finally:
        await again.close()


async def test_a_holder_on_this_host_whose_process_is_gone_is_taken_over_at_once(
    store_url: str, project: Path
) -> None:
    lk, session = await _idle_session(store_url, project)
    session_id = SessionId(session.session_id)
    await lk.close()
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()  # a pid that no longer runs (like a process killed with -9)
    store = await open_store(store_url)
    await store.acquire_lease(
        session_id, "killed", ttl_s=3600, host=socket.gethostname(), pid=gone.pid
    )
    again = await Loomkin.open(store)
    try:
        resumed = await again.resume_session(session_id, model_factory=_idle)
        lease = resumed.lease()
        assert lease is not None
        assert lease.pid == os.getpid()
    finally:
        await again.close()


async def test_closing_a_runtime_releases_its_leases(store_url: str, project: Path) -> None:
    lk, session = await _idle_session(store_url, project)
    session_id = SessionId(session.session_id)
    await lk.close()
    reopened = await open_store(store_url)
    try:
        lease = await reopened.current_lease(session_id)
        assert lease is not None
        assert lease.released
    finally:
        await reopened.close()
    # A runtime of this very process (so its holder is alive) resumes it at once.
    again = await Loomkin.open(store_url)
    try:
        await again.resume_session(session_id, model_factory=_idle)
    finally:
        await again.close()
