"""Kill -9 and race real processes on a store: nothing acknowledged is lost, one writer wins.

The child (``store_crash_child.py``) prints an ack line after every append returns; the parent
waits for a random number of ack lines (no sleeps) and sends SIGKILL, so the kill lands at a
random point of the child's append loop: mid-transaction, mid-commit, between batches. After
every kill the parent reopens the store, checks the log end to end (positions, hash chain,
decoding, and for SQLite the head file) and checks that the dead child's lease keeps others
out until it expires, after which the next child takes it with a higher epoch. Time for lease
expiry is virtual: the parent passes the child a ``now`` just past the dead holder's expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import CorruptStoreError, LeaseHeld
from loomkin.ids import SessionId
from loomkin.persistence import check_store, open_store
from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema, task_event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.core.events import RecordedEvent
    from loomkin.core.store import Store

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("store_crash_child.py")
SESSION = SessionId("crash")


@dataclass(frozen=True, slots=True)
class Acked:
    tag: str
    events: int
    """Events the child saw acknowledged before it died."""
    last_position: int
    epoch: int = 0


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _run_and_kill(url: str, tag: str, acks_before_kill: int, *lease: str) -> Acked:
    proc = await _spawn("append", url, tag, *lease)
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        opened = await proc.stdout.readline()
        assert opened.startswith(b"open "), (opened, await proc.stderr.read())
        acked = Acked(tag, 0, 0, int(opened.split()[2]))
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
    return Acked(before.tag, int(events), int(position), before.epoch)


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


@contextlib.asynccontextmanager
async def _opened(url: str) -> AsyncIterator[Store]:
    store = await open_store(url)
    try:
        yield store
    finally:
        await store.close()


async def _dead_holder_keeps_the_lease_until_it_expires(url: str, dead: Acked) -> list[str]:
    """Check the killed child's lease; return the ``--now`` that lets the next child take it."""
    async with _opened(url) as store:
        lease = await store.current_lease(SESSION)
        assert lease is not None
        assert (lease.holder, lease.epoch) == (dead.tag, dead.epoch)
        with pytest.raises(LeaseHeld, match=rf"'{dead.tag}'.*pid {lease.pid}"):
            await store.acquire_lease(SESSION, "intruder", ttl_s=5.0, now=lease.expires_at - 1.0)
        return ["--now", repr(lease.expires_at + 0.001)]


async def _crash_trials(url: str, trials: int, rng: random.Random) -> None:
    done: list[Acked] = []
    now: list[str] = []
    for trial in range(trials):
        acks = rng.choice((0, 1, rng.randint(2, 50), rng.randint(2, 50), rng.randint(50, 400)))
        lease = ["--lease", SESSION, "--ttl", "30", *now]
        acked = await _run_and_kill(url, f"run{trial}", acks, *lease)
        assert acked.epoch == trial + 1, "each child took the lease with the next epoch"
        done.append(acked)
        async with _opened(url) as store:
            events = await store.read()
            _check_log(events, done)
            report = await store.check()
            assert (report.ok, report.events_checked) == (True, len(events)), report
        now = await _dead_holder_keeps_the_lease_until_it_expires(url, acked)
    async with _opened(url) as store:
        last = await store.last_position()
        recorded = await store.append([task_event("after-crash")])
        assert [e.position for e in recorded] == [last + 1]
        assert (await store.read(after=last))[0].event_id == recorded[0].event_id
        assert (await store.check()).events_checked == last + 1


def _sep(url: str) -> str:
    return "&" if "?" in url else "?"


@contextlib.asynccontextmanager
async def _postgres_url() -> AsyncIterator[str]:
    url = postgres_test_url()
    async with scratch_postgres_schema(url) as schema:
        yield f"{url}{_sep(url)}schema={schema}"


async def test_sqlite_store_loses_no_acknowledged_event_on_kill_9(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    await _crash_trials(f"sqlite://{tmp_path}/loomkin.db", trials=5, rng=random.Random(seed))


@pytest.mark.postgres
async def test_postgres_store_loses_no_acknowledged_event_on_kill_9() -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    async with _postgres_url() as url:
        await _crash_trials(url, trials=3, rng=random.Random(seed))


# -- two processes, one session --------------------------------------------------------------


async def _race(url: str, racers: int) -> None:
    procs = [await _spawn("race", url, f"racer{i}", "--lease", "raced") for i in range(racers)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            ready = await proc.stdout.readline()
            assert ready == b"ready\n", (ready, await proc.communicate())
        for proc in procs:  # release them together
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outcomes = [await proc.communicate() for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    lines = [out.decode().split() for out, _ in outcomes]
    assert all(proc.returncode == 0 for proc in procs), outcomes
    winners = [f"racer{i}" for i, line in enumerate(lines) if line[0] == "won"]
    assert len(winners) == 1, lines
    assert sorted(map(tuple, lines)) == sorted(
        [("won", "1")] + [("held", winners[0])] * (racers - 1)
    )
    async with _opened(url) as store:
        lease = await store.current_lease(SessionId("raced"))
        assert lease is not None
        assert (lease.holder, lease.epoch) == (winners[0], 1)
        assert lease.pid != os.getpid()


async def test_sqlite_processes_racing_for_a_session_have_one_winner(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/loomkin.db"
    async with _opened(url):  # created before the race, so that only the lease races
        pass
    await _race(url, racers=4)


@pytest.mark.postgres
async def test_postgres_processes_racing_for_a_session_have_one_winner() -> None:
    async with _postgres_url() as url:
        async with _opened(url):
            pass
        await _race(url, racers=4)


async def _stale_writer_is_refused(url: str) -> None:
    proc = await _spawn("append", url, "old", "--lease", SESSION, "--ttl", "30")
    assert proc.stdout is not None
    try:
        opened = await proc.stdout.readline()
        assert opened.split()[:1] == [b"open"], (opened, await proc.communicate())
        for _ in range(random.randint(1, 30)):
            assert (await proc.stdout.readline()).startswith(b"ack ")
        async with _opened(url) as store:
            lease = await store.acquire_lease(SESSION, "new", ttl_s=30.0, take_over=True)
            taken_at = await store.last_position()
            # The old writer goes on until its next append is refused; acks already printed
            # were for appends that committed before the take-over.
            lines = (await proc.stdout.read()).decode().splitlines()
            assert await proc.wait() == 3
            assert lines[-1].startswith("stale "), lines
            assert "taken over by holder 'new'" in lines[-1]
            assert all(int(line.split()[1]) <= taken_at for line in lines[:-1])
            old_events = [e for e in await store.read() if e.event_id.startswith("old-")]
            assert max(e.position for e in old_events) <= taken_at
            recorded = await store.append([task_event("n", session=SESSION)], fences=[lease.fence])
            assert [e.position for e in recorded] == [taken_at + 1]
            report = await store.check()
            assert (report.ok, report.events_checked) == (True, taken_at + 1), report
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sqlite_writer_is_fenced_off_after_a_take_over(tmp_path: Path) -> None:
    await _stale_writer_is_refused(f"sqlite://{tmp_path}/loomkin.db")


@pytest.mark.postgres
async def test_postgres_writer_is_fenced_off_after_a_take_over() -> None:
    async with _postgres_url() as url:
        await _stale_writer_is_refused(url)


# -- SQLite: a WAL lost after a kill ------------------------------------------------------------


async def test_sqlite_wal_deleted_after_a_kill_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "loomkin.db"
    acked = await _run_and_kill(f"sqlite://{path}", "lost", 30)
    assert acked.events > 0
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 32, "the commits were still in the WAL when the child died"
    wal.unlink()
    path.with_name(path.name + "-shm").unlink(missing_ok=True)
    with pytest.raises(CorruptStoreError, match=r"ends at position 0, but position (\d+) was") as e:
        await open_store(str(path))
    # The head is written right after each commit, so it may be one batch past the last ack
    # the parent read, never behind it.
    recorded = re.search(r"but position (\d+) was", str(e.value))
    assert recorded is not None
    assert int(recorded.group(1)) >= acked.last_position
    report = await check_store(str(path))
    assert not report.ok
    assert report.problem is not None
    assert "write-ahead log" in report.problem
    assert report.bad_position == report.last_good_position + 1
