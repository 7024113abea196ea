"""A loop that runs until cancelled stops even when ``asyncio.wait_for`` lost the cancellation.

On Python 3.11 ``wait_for`` returns the result when the cancellation arrives just as the
awaited reply does (nats-py's requests wait that way): a worker's scan loop, a lease keeper's
renewals or the web app's view then ran on after ``cancel()``, and closing them hung.
"""

from __future__ import annotations

import asyncio

from loomkin.cluster.bus import stop_if_cancelled


async def test_a_loop_stops_at_its_next_turn_when_a_reply_swallowed_its_cancellation() -> None:
    asked = asyncio.Event()
    replies: list[str] = []
    reply: asyncio.Future[str] | None = None

    async def renewals() -> None:  # like a lease keeper's: one request per turn, until cancelled
        nonlocal reply
        while True:
            stop_if_cancelled()
            reply = asyncio.get_running_loop().create_future()
            asked.set()
            replies.append(await asyncio.wait_for(reply, 60))

    task = asyncio.create_task(renewals())
    await asked.wait()
    assert reply is not None
    reply.set_result("renewed")  # the reply and the cancellation in the same turn of the loop
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=60)
    assert done == {task}
    assert task.cancelled()
    assert replies in ([], ["renewed"])  # 3.11 returns the reply; later versions raise at once


async def test_a_task_never_cancelled_goes_on() -> None:
    async def turn() -> str:
        stop_if_cancelled()
        return "on"

    assert await asyncio.create_task(turn()) == "on"
