"""Shared pieces of the cluster tests: scripted coders on workers, the app of ``serve --bus``,
and what to check after."""

from __future__ import annotations

import collections
import contextlib
from typing import TYPE_CHECKING

import httpx

from loomkin.api import ClusterView, LaunchPolicy, create_app
from loomkin.bench.faults_child import SETTINGS, ensure_work
from loomkin.cluster import ClusterClient, HostOptions, Worker
from loomkin.core.events import ToolCallCompleted, ToolCallStarted
from loomkin.service import Loomkin
from loomkin.testing.models import FunctionModel
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from loomkin.agents import SessionSettings
    from loomkin.llm.model import Model
    from loomkin.service import Session

TTL = 1.5
BASE = "http://127.0.0.1"


def slow_factory(latency_s: float) -> Callable[[object, str], Model]:
    from loomkin.bench.faults_child import coder

    def factory(_role: object, name: str) -> Model:
        return FunctionModel(coder, name=f"scripted:{name}", latency_s=latency_s)

    return factory


def options(
    pg_url: str,
    latency_s: float = 0.0,
    *,
    factory: Callable[[object, str], Model] | None = None,
    settings: SessionSettings = SETTINGS,
    prepare: Callable[[Session], Awaitable[None]] | None = ensure_work,
) -> HostOptions:
    """How a test's worker hosts sessions: scripted coders (or ``factory``) on the store."""
    return HostOptions(
        store_url=pg_url,
        ttl_s=TTL,
        model_factory=factory or slow_factory(latency_s),
        settings=settings,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=prepare,
    )


async def start_worker(
    bus_url: str, cluster: str, hosting: HostOptions, *, capacity: int = 100
) -> Worker:
    """A started worker of the test (the caller closes it)."""
    node = Worker(bus_url, hosting, cluster=cluster, scan_s=0.2, capacity=capacity)
    await node.start()
    return node


@contextlib.asynccontextmanager
async def served(
    bus_url: str, cluster: str, pg_url: str, project: Path, *, act_timeout_s: float = 10.0
) -> AsyncIterator[tuple[httpx.AsyncClient, ClusterView, ClusterClient]]:
    """The app of ``serve --bus``, hosting nothing itself (as with --no-host)."""
    async with (
        await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as client,
        await Loomkin.open(pg_url) as watcher,
    ):
        view = ClusterView(client, watcher, poll_s=0.2, act_timeout_s=act_timeout_s)
        async with view.watching():
            app = create_app(watcher, launch=LaunchPolicy(roots=(project,)), cluster=view)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
                    yield http, view, client


async def first_shell_call(client: ClusterClient, session_id: str) -> None:
    """Follow the session until a shell call starts, closing the follow (and its NATS
    subscription) here rather than whenever the abandoned generator is collected."""
    async with contextlib.aclosing(client.follow(session_id)) as events:
        async for recorded in events:
            if isinstance(recorded.event, ToolCallStarted) and recorded.event.tool == "shell":
                return


def side_lines(project: Path) -> list[str]:
    side = project / "side.txt"
    return side.read_text().split() if side.exists() else []


async def completed_calls(client: ClusterClient, session_id: str) -> collections.Counter[str]:
    """How many times each tool call completed (every call id must be once)."""
    done: collections.Counter[str] = collections.Counter()
    for recorded in await client.history(session_id):
        if isinstance(recorded.event, ToolCallCompleted):
            done[recorded.event.call_id] += 1
    return done
