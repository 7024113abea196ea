from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from loomkin.api import LaunchPolicy, create_app
from loomkin.service import Loomkin, PendingPermission, Session

from .scenario import start_scenario

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

BASE = "http://127.0.0.1"


@dataclass
class Harness:
    loomkin: Loomkin
    session: Session
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def base(self) -> str:
        return f"/api/sessions/{self.session.session_id}"

    async def until(self, condition: Callable[[], bool], spins: int = 20_000) -> None:
        """Let the loop run until ``condition`` holds (no real time passes)."""
        for _ in range(spins):
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError("condition never held")

    async def wait_prompt(self) -> PendingPermission:
        # The prompt is answerable once the agent shows waiting_permission (see the report on
        # agents/agent.py: PermissionRequested is visible a moment before it can be answered).
        def waiting() -> bool:
            return any(a.status == "waiting_permission" for a in self.session.agents())

        await self.until(waiting)
        return self.session.pending_permissions()[0]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    # The tests' projects live under tmp_path: the server's one root (as --project is).
    root = await asyncio.to_thread(tmp_path.resolve)
    async with await Loomkin.open("memory:") as loomkin:
        session = await start_scenario(loomkin, tmp_path)
        app = create_app(loomkin, launch=LaunchPolicy(roots=(root,)))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                yield Harness(loomkin, session, app, client)
