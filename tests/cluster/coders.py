"""Shared pieces of the cluster tests: scripted coders on workers, and what to check after."""

from __future__ import annotations

import collections
import contextlib
from typing import TYPE_CHECKING

from loomkin.bench.faults_child import SETTINGS, ensure_work
from loomkin.cluster import ClusterClient, HostOptions
from loomkin.core.events import ToolCallCompleted, ToolCallStarted
from loomkin.testing.models import FunctionModel
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.llm.model import Model

TTL = 1.5


def slow_factory(latency_s: float) -> Callable[[object, str], Model]:
    from loomkin.bench.faults_child import coder

    def factory(_role: object, name: str) -> Model:
        return FunctionModel(coder, name=f"scripted:{name}", latency_s=latency_s)

    return factory


def options(pg_url: str, latency_s: float = 0.0) -> HostOptions:
    return HostOptions(
        store_url=pg_url,
        ttl_s=TTL,
        model_factory=slow_factory(latency_s),
        settings=SETTINGS,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=ensure_work,
    )


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
