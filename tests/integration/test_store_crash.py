"""Kill -9 a process that is appending, reopen the store: nothing acknowledged is lost.

The child (``store_crash_child.py``) prints an ack line after every append returns; the parent
waits for a random number of ack lines (no sleeps) and sends SIGKILL, so the kill lands at a
random point of the child's append loop: mid-transaction, mid-commit, between batches. After
every kill the parent reopens the store and checks the log.
"""

from __future__ import annotations

import asyncio
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loomkin.persistence import open_store
from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema, task_event

if TYPE_CHECKING:
    from loomkin.core.events import RecordedEvent

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("store_crash_child.py")


@dataclass(frozen=True, slots=True)
class Acked:
    tag: str
    events: int
    """Events the child saw acknowledged before it died."""
    last_position: int


async def _run_and_kill(url: str, tag: str, acks_before_kill: int) -> Acked:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), url, tag,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    acked = Acked(tag, 0, 0)
    try:
        opened = await proc.stdout.readline()
        assert opened.startswith(b"open "), (opened, await proc.stderr.read())
        for _ in range(acks_before_kill):
            acked = _parse(await proc.stdout.readline(), acked)
    finally:
        proc.kill()
        rest, err = await proc.communicate()
    assert proc.returncode == -9, err.decode()
    # Lines printed between our last read and the kill were acknowledged too.
    for line in rest.splitlines(keepends=True):
        acked = _parse(line, acked)
    return acked


def _parse(line: bytes, before: Acked) -> Acked:
    if not line.endswith(b"\n"):
        return before  # the kill cut the line: that ack was never complete
    word, position, events = line.split()
    assert word == b"ack", line
    return Acked(before.tag, int(events), int(position))


def _check_log(events: list[RecordedEvent], trials: list[Acked]) -> None:
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    ids = [e.event_id for e in events]
    assert len(set(ids)) == len(ids), "duplicate event ids"
    by_tag: dict[str, list[str]] = {}
    for event_id in ids:
        by_tag.setdefault(event_id.rsplit("-", 1)[0], []).append(event_id)
    for trial in trials:
        stored = by_tag.get(trial.tag, [])
        # Each child's events are a gapless prefix of what it tried, covering every ack.
        assert stored == [f"{trial.tag}-{n:08d}" for n in range(len(stored))]
        assert len(stored) >= trial.events, (trial, len(stored))
        if trial.events:
            last = f"{trial.tag}-{trial.events - 1:08d}"
            assert events[trial.last_position - 1].event_id == last


async def _crash_trials(url: str, trials: int, rng: random.Random) -> None:
    done: list[Acked] = []
    for trial in range(trials):
        acks = rng.choice((0, 1, rng.randint(2, 50), rng.randint(2, 50), rng.randint(50, 400)))
        done.append(await _run_and_kill(url, f"run{trial}", acks))
        store = await open_store(url)
        try:
            _check_log(await store.read(), done)
        finally:
            await store.close()
    store = await open_store(url)
    try:
        last = await store.last_position()
        recorded = await store.append([task_event("after-crash")])
        assert [e.position for e in recorded] == [last + 1]
        assert (await store.read(after=last))[0].event_id == recorded[0].event_id
    finally:
        await store.close()


def _sep(url: str) -> str:
    return "&" if "?" in url else "?"


async def test_sqlite_store_loses_no_acknowledged_event_on_kill_9(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    await _crash_trials(f"sqlite://{tmp_path}/loomkin.db", trials=5, rng=random.Random(seed))


@pytest.mark.postgres
async def test_postgres_store_loses_no_acknowledged_event_on_kill_9() -> None:
    url = postgres_test_url()
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    async with scratch_postgres_schema(url) as schema:
        await _crash_trials(f"{url}{_sep(url)}schema={schema}", trials=2, rng=random.Random(seed))
