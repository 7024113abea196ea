"""Child process of ``test_store_crash.py``: append forever, or race for a lease.

``python store_crash_child.py append <url> <tag> [--lease SESSION --ttl S --now T]`` opens the
store, optionally acquires ``SESSION``'s lease as holder ``<tag>`` (at virtual time ``T`` when
given), prints ``open <last position> <epoch or 0>``, then appends batches forever (fenced
when it holds the lease), printing ``ack <last position> <events appended>`` after every
append returns. If the store refuses a fenced append it prints ``stale <message>`` and exits
with status 3. The parent kills it with SIGKILL at a random line. Event ids are
``<tag>-<n>`` so the parent can tell exactly which events were acknowledged.

``python store_crash_child.py race <url> <tag> --lease SESSION --ttl S`` opens the store,
prints ``ready``, waits for a line on stdin, then tries to acquire the lease and prints
``won <epoch>`` or ``held <holder>``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from loomkin.core.events import NewEvent, TaskCreated
from loomkin.errors import LeaseHeld, StaleEpoch
from loomkin.ids import EventId, SessionId, TaskId, TeamId
from loomkin.persistence import open_store


def _event(tag: str, n: int, session: str) -> NewEvent:
    return NewEvent(
        event_id=EventId(f"{tag}-{n:08d}"),
        recorded_at=float(n),
        event=TaskCreated(
            session_id=SessionId(session),
            task_id=TaskId(f"t{n % 5}"),
            team_id=TeamId("team"),
            title=f"event {n} " + "x" * (n % 300),
        ),
    )


async def append(args: argparse.Namespace) -> int:
    store = await open_store(args.url)
    fences = []
    epoch = 0
    if args.lease:
        lease = await store.acquire_lease(
            SessionId(args.lease), args.tag, ttl_s=args.ttl, now=args.now
        )
        fences, epoch = [lease.fence], lease.epoch
    print(f"open {await store.last_position()} {epoch}", flush=True)
    rng = random.Random(args.tag)
    appended = 0
    session = args.lease or "crash"
    while True:
        size = rng.choice((1, 1, 2, 5, 20, 100))
        batch = [_event(args.tag, appended + i, session) for i in range(size)]
        try:
            recorded = await store.append(batch, fences=fences)
        except StaleEpoch as exc:
            print(f"stale {exc}", flush=True)
            await store.close()
            return 3
        appended += size
        print(f"ack {recorded[-1].position} {appended}", flush=True)


async def race(args: argparse.Namespace) -> int:
    store = await open_store(args.url)
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        try:
            lease = await store.acquire_lease(SessionId(args.lease), args.tag, ttl_s=args.ttl)
        except LeaseHeld as exc:
            print(f"held {exc.holder}", flush=True)
        else:
            print(f"won {lease.epoch}", flush=True)
    finally:
        await store.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("append", "race"))
    parser.add_argument("url")
    parser.add_argument("tag")
    parser.add_argument("--lease", default="")
    parser.add_argument("--ttl", type=float, default=30.0)
    parser.add_argument("--now", type=float, default=None)
    args = parser.parse_args()
    return asyncio.run(append(args) if args.mode == "append" else race(args))


if __name__ == "__main__":
    sys.exit(main())
