"""Child process of ``test_store_crash.py``: append batches forever, printing each ack.

Usage: ``python store_crash_child.py <store url> <tag>``. Prints ``open <last position>`` once
the store is open, then ``ack <last position> <events appended>`` after every append returns;
the parent kills it with SIGKILL at a random line. Event ids are ``<tag>-<n>`` so the parent
can tell exactly which events were acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import sys

from loomkin.core.events import NewEvent, TaskCreated
from loomkin.ids import EventId, SessionId, TaskId, TeamId
from loomkin.persistence import open_store


def _event(tag: str, n: int) -> NewEvent:
    return NewEvent(
        event_id=EventId(f"{tag}-{n:08d}"),
        recorded_at=float(n),
        event=TaskCreated(
            session_id=SessionId("crash"),
            task_id=TaskId(f"t{n % 5}"),
            team_id=TeamId("team"),
            title=f"event {n} " + "x" * (n % 300),
        ),
    )


async def main(url: str, tag: str) -> None:
    store = await open_store(url)
    print(f"open {await store.last_position()}", flush=True)
    rng = random.Random(tag)
    appended = 0
    while True:
        size = rng.choice((1, 1, 2, 5, 20, 100))
        recorded = await store.append([_event(tag, appended + i) for i in range(size)])
        appended += size
        print(f"ack {recorded[-1].position} {appended}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
