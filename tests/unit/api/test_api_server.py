"""The real web server (uvicorn) stopped from outside, as ``run --serve`` stops it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from loomkin.api import serve
from loomkin.service import Loomkin

TOKEN = "t" * 40


async def test_a_cancelled_server_shuts_its_app_down_and_leaves_no_task_behind() -> None:
    # It used to be cancelled inside uvicorn's loop: the app's lifespan task was left
    # waiting for a shutdown that never came, and when the loop closed, its CancelledError
    # was logged as 'ERROR: Traceback …' under the summary of every `run --serve`.
    async with await Loomkin.open("memory:") as loomkin:
        listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ready = listening.set_result
        server = asyncio.create_task(serve(loomkin, port=0, token=TOKEN, ready=ready))
        url = await listening
        async with httpx.AsyncClient() as http:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            answer = await http.get(url.split("/?")[0] + "/api/server", headers=headers)
        assert answer.status_code == 200
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
    left = [t.get_coro() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert left == []
