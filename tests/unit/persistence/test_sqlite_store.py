from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ConfigError, CorruptStoreError, SchemaVersionError, StoreError
from loomkin.ids import SessionId
from loomkin.persistence import SqliteStore, _sqlite_file, check_store
from loomkin.persistence._migrations import Migration
from loomkin.persistence._rows import INSERT_COLUMNS, plan_batch
from loomkin.testing.conformance import task_event

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.events import NewEvent


async def _filled(path: Path, events: int = 300) -> None:
    async with await SqliteStore.open(path) as store:
        for _ in range(0, events, 100):
            await store.append([task_event(f"t{i % 7}", title="x" * 200) for i in range(100)])
        assert await store.last_position() == events


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _sql(path: Path, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(statement)


async def test_events_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "loomkin.db"
    async with await SqliteStore.open(path) as store:
        appended = await store.append([task_event("a"), task_event("b")])
    async with await SqliteStore.open(path) as store:
        assert await store.read() == appended
        assert [e.position for e in await store.append([task_event("a")])] == [3]


async def test_uses_wal_and_the_chosen_synchronous_level(tmp_path: Path) -> None:
    for level, code in (("NORMAL", 1), ("FULL", 2)):
        async with await SqliteStore.open(tmp_path / f"{level}.db", synchronous=level) as store:
            mode = await store._run(lambda: store._conn.execute("PRAGMA journal_mode").fetchone())
            sync = await store._run(lambda: store._conn.execute("PRAGMA synchronous").fetchone())
            assert (mode, sync) == (("wal",), (code,))


async def test_all_sqlite_calls_run_in_one_worker_thread(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "x.db") as store:
        seen = set()
        for _ in range(5):
            await store.append([task_event("a")])
            seen.add(await store._run(threading.get_ident))
        assert len(seen) == 1
        assert threading.get_ident() not in seen


async def test_the_loop_keeps_running_during_a_large_append(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "x.db") as store:
        ticks = 0
        append = asyncio.ensure_future(
            store.append([task_event(f"t{i % 9}", title="y" * 500) for i in range(5000)])
        )
        while not append.done():
            ticks += 1
            await asyncio.sleep(0)
        await append
        assert ticks > 1


async def test_two_stores_on_one_file_keep_positions_gapless(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with await SqliteStore.open(path) as one, await SqliteStore.open(path) as two:
        batches = [[task_event(f"t{i % 3}") for _ in range(3)] for i in range(20)]
        stores = [one, two] * 10
        await asyncio.gather(*(s.append(b) for s, b in zip(stores, batches, strict=True)))
        events = await one.read()
        assert [e.position for e in events] == list(range(1, 61))
        for stream in ("task:t0", "task:t1", "task:t2"):
            versions = [e.stream_version for e in await two.read_stream(stream)]
            assert versions == list(range(1, len(versions) + 1))


async def test_close_waits_for_appends_in_flight(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "x.db")
    pending = [asyncio.ensure_future(store.append([task_event("a")])) for _ in range(10)]
    await asyncio.sleep(0)
    await store.close()
    assert [len(r) for r in await asyncio.gather(*pending)] == [1] * 10
    async with await SqliteStore.open(tmp_path / "x.db") as again:
        assert await again.last_position() == 10


async def test_random_bytes_are_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CorruptStoreError, match="not a SQLite database") as caught:
        await SqliteStore.open(path)
    assert repr(str(path)) in str(caught.value)


async def test_file_truncated_mid_page_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await _filled(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 123])
    with pytest.raises(CorruptStoreError, match="truncated") as caught:
        await SqliteStore.open(path)
    assert str(path) in str(caught.value)


async def test_file_truncated_at_a_page_boundary_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await _filled(path)
    data = path.read_bytes()
    path.write_bytes(data[: 4096 * 3])
    with pytest.raises(CorruptStoreError, match=r"truncated: the header counts \d+ pages"):
        await SqliteStore.open(path)


async def test_file_truncated_inside_the_header_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await _filled(path, events=100)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(CorruptStoreError, match="truncated to 10 bytes"):
        await SqliteStore.open(path)


async def test_damaged_pages_are_reported_on_read(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await _filled(path)
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096):
        data[page * 4096 : page * 4096 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="damaged") as caught:
        async with await SqliteStore.open(path) as store:
            await store.read()
    assert str(path) in str(caught.value)


async def test_an_empty_file_is_refused_not_made_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(CorruptStoreError, match="empty store file") as caught:
        await SqliteStore.open(path)
    assert repr(str(path)) in str(caught.value)
    assert path.read_bytes() == b""
    assert _names(tmp_path) == ["empty.db"]


async def test_an_empty_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.db"
    _sql(path, "CREATE TABLE t (x); DROP TABLE t;")  # a valid header, no tables
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError, match=r"empty database \(no tables\)"):
        await SqliteStore.open(path)
    assert path.read_bytes() == before


async def test_a_foreign_database_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _sql(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY); INSERT INTO customers VALUES (7);")
    before = path.read_bytes()
    assert before[18:20] == b"\x01\x01"  # rollback journal, as the other program left it
    with pytest.raises(CorruptStoreError, match=r"'customers'.*not a Loomkin store"):
        await SqliteStore.open(path)
    assert path.read_bytes() == before  # not switched to WAL, nothing migrated
    assert _names(tmp_path) == ["other.db"]


async def test_a_foreign_database_beside_our_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    await _filled(path, events=100)
    _sql(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY);")
    with pytest.raises(CorruptStoreError, match=r"tables \['customers'\]"):
        await SqliteStore.open(path)


async def test_tables_without_a_schema_version_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _sql(path, "CREATE TABLE events (id INTEGER PRIMARY KEY);")
    with pytest.raises(CorruptStoreError, match="no Loomkin schema version"):
        await SqliteStore.open(path)


async def test_wrong_table_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    await _filled(path, events=100)
    _sql(path, "DROP INDEX ix_events_session_position; ALTER TABLE events DROP COLUMN session_id;")
    with pytest.raises(CorruptStoreError, match="wrong table layout"):
        await SqliteStore.open(path)


async def test_a_newer_schema_version_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    await _filled(path, events=100)
    _sql(path, "UPDATE schema_version SET version = 42;")
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError, match=r"version 42, newer than .* up to 2"):
        await SqliteStore.open(path)
    assert path.read_bytes() == before


async def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        await SqliteStore.open(tmp_path)


async def test_bad_synchronous_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'OFF'"):
        await SqliteStore.open(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


async def test_opening_a_store_imports_no_postgres_driver(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    await _filled(path, events=100)
    script = (
        "import asyncio, sys\n"
        "from loomkin.persistence import open_store\n"
        "async def main():\n"
        f"    store = await open_store({str(path)!r})\n"
        "    assert await store.last_position() == 100\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in ('alembic', 'sqlalchemy', 'psycopg') if m in sys.modules))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "[]"


# -- creation ----------------------------------------------------------------------------------


async def test_concurrent_first_opens_create_one_store(tmp_path: Path) -> None:
    path = tmp_path / "new" / "loomkin.db"
    stores = await asyncio.gather(*(SqliteStore.open(path) for _ in range(6)))
    try:
        await asyncio.gather(*(s.append([task_event(f"t{i}")]) for i, s in enumerate(stores)))
        assert await stores[0].last_position() == 6
        assert (await stores[3].check()).events_checked == 6
    finally:
        for store in stores:
            await store.close()
    names = _names(path.parent)
    assert names == ["loomkin.db", "loomkin.db-head"], "no temporary file is left behind"


# -- the head file and a lost WAL ----------------------------------------------------------------


def _copy(source: Path, target: Path, *suffixes: str) -> None:
    """Copy the database and the named companions (``-head``, ``-wal``) as a backup would."""
    target.write_bytes(source.read_bytes())
    for suffix in suffixes:
        (target.parent / (target.name + suffix)).write_bytes(
            (source.parent / (source.name + suffix)).read_bytes()
        )


async def _open_with_commits_in_the_wal(path: Path, batches: int = 5) -> SqliteStore:
    store = await SqliteStore.open(path)
    for i in range(batches):
        await store.append([task_event(f"t{i}-{j}") for j in range(10)])
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 32, "commits are in the WAL, not yet checkpointed"
    return store


async def test_the_head_file_records_the_newest_event(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with await SqliteStore.open(path) as store:
        assert store.head_path == tmp_path / "x.db-head"
        await store.append([task_event("a"), task_event("b")])
        report = await store.check()
        data = store.head_path.read_bytes()
        assert int.from_bytes(data[8:16], "big") == 2
        assert data[16:48].hex() == report.head


async def test_a_new_store_ignores_the_head_file_a_deleted_one_left(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    await _filled(path, events=100)
    path.unlink()  # starting over on purpose; the head file stays behind
    async with await SqliteStore.open(path) as store:
        assert await store.last_position() == 0
        await store.append([task_event("a")])
    async with await SqliteStore.open(path) as store:
        assert (await store.check()).events_checked == 1


async def test_a_copy_without_its_wal_is_refused_naming_the_loss(tmp_path: Path) -> None:
    path, copy = tmp_path / "x.db", tmp_path / "copy.db"
    store = await _open_with_commits_in_the_wal(path)
    try:
        _copy(path, copy, "-head")  # the main file and the head, but not the WAL
    finally:
        await store.close()
    with pytest.raises(CorruptStoreError, match=r"ends at position 0, but position 50 was ackn"):
        await SqliteStore.open(copy)
    report = await check_store(str(copy))
    assert (report.ok, report.bad_position) == (False, 1)
    assert "copy.db-head" in report.summary()


async def test_a_damaged_wal_is_detected(tmp_path: Path) -> None:
    path, copy = tmp_path / "x.db", tmp_path / "copy.db"
    store = await _open_with_commits_in_the_wal(path, batches=8)
    try:
        _copy(path, copy, "-head", "-wal")
    finally:
        await store.close()
    wal = tmp_path / "copy.db-wal"
    data = bytearray(wal.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 64):  # a rotten frame: recovery stops before it
        data[i] ^= 0xFF
    wal.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=r"but position 80 was acknowledged"):
        await SqliteStore.open(copy)


async def test_a_truncated_wal_is_detected(tmp_path: Path) -> None:
    path, copy = tmp_path / "x.db", tmp_path / "copy.db"
    store = await _open_with_commits_in_the_wal(path)
    try:
        _copy(path, copy, "-head", "-wal")
    finally:
        await store.close()
    wal = tmp_path / "copy.db-wal"
    wal.write_bytes(wal.read_bytes()[: wal.stat().st_size // 3])
    with pytest.raises(CorruptStoreError, match=r"but position 50 was acknowledged"):
        await SqliteStore.open(copy)


async def test_a_complete_copy_with_its_wal_opens(tmp_path: Path) -> None:
    path, copy = tmp_path / "x.db", tmp_path / "copy.db"
    store = await _open_with_commits_in_the_wal(path)
    try:
        _copy(path, copy, "-head", "-wal")
    finally:
        await store.close()
    async with await SqliteStore.open(copy) as again:
        report = await again.check()
        assert (report.ok, report.events_checked) == (True, 50), report


async def test_another_stores_file_in_place_is_detected(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    await _filled(ours, events=100)
    await _filled(theirs, events=100)  # same positions, other events
    ours.write_bytes(theirs.read_bytes())
    with pytest.raises(CorruptStoreError, match="event at position 100 is not the one acknowl"):
        await SqliteStore.open(ours)


async def test_without_its_head_file_a_lost_wal_goes_unnoticed(tmp_path: Path) -> None:
    # The documented limit: nothing inside the database can tell that its WAL is gone.
    path, copy = tmp_path / "x.db", tmp_path / "copy.db"
    store = await _open_with_commits_in_the_wal(path)
    try:
        _copy(path, copy)
    finally:
        await store.close()
    async with await SqliteStore.open(copy) as again:
        assert await again.last_position() == 0
        assert (await again.check()).ok


async def test_a_damaged_head_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    await _filled(path, events=100)
    head = tmp_path / "x.db-head"
    head.write_bytes(b"\x00" * 10)
    with pytest.raises(CorruptStoreError, match=r"head file .* is damaged; delete it"):
        await SqliteStore.open(path)
    head.unlink()
    async with await SqliteStore.open(path) as store:
        assert (await store.check()).events_checked == 100
    assert int.from_bytes(head.read_bytes()[8:16], "big") == 100, "recreated on open"


async def test_check_reports_damaged_pages(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await _filled(path)
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096):
        data[page * 4096 + 100 : page * 4096 + 164] = b"\xff" * 64
    path.write_bytes(bytes(data))
    report = await check_store(str(path))
    assert not report.ok
    assert report.problem is not None
    assert "damaged" in report.problem or "cannot read on" in report.problem


# -- migrations ----------------------------------------------------------------------------------

# Exactly what Alembic's revision "0001" created (``sqlite3 .schema`` of a store it made).
ALEMBIC_0001 = """
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE events (
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    stream_version BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    recorded_at DOUBLE NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (position),
    CONSTRAINT uq_events_event_id UNIQUE (event_id),
    CONSTRAINT uq_events_stream_version UNIQUE (stream, stream_version)
);
CREATE INDEX ix_events_session_position ON events (session_id, position);
INSERT INTO alembic_version VALUES ('0001');
"""


def _alembic_store(path: Path, events: int) -> list[NewEvent]:
    """A store as the Alembic-era code left it: WAL mode, revision 0001, ``events`` rows."""
    batch = [task_event(f"t{i % 7}", session=f"s{i % 2}") for i in range(events)]
    planned = plan_batch(batch, last_position=0, last_hash=bytes(32), stream_versions={})
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(ALEMBIC_0001)
        with conn:
            conn.executemany(
                f"INSERT INTO events ({INSERT_COLUMNS.removesuffix(', hash')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row[:9] for row in planned.rows],
            )
    return batch


async def test_a_store_alembic_created_is_migrated_and_chained(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    batch = _alembic_store(path, events=2500)  # more than one backfill page
    async with await SqliteStore.open(path) as store:
        events = await store.read()
        assert [e.event_id for e in events] == [e.event_id for e in batch]
        report = await store.check()
        assert (report.ok, report.events_checked) == (True, 2500), report
        lease = await store.acquire_lease(SessionId("s0"), "me", ttl_s=5.0)
        await store.append([task_event("new", session="s0")], fences=[lease.fence])
        assert (await store.check()).events_checked == 2501
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"events", "leases", "schema_version"}
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


async def test_an_unknown_alembic_revision_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _alembic_store(path, events=3)
    _sql(path, "UPDATE alembic_version SET version_num = 'banana';")
    with pytest.raises(SchemaVersionError, match=r"unknown \(Alembic\) schema version 'banana'"):
        await SqliteStore.open(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("banana",)]


async def test_a_migration_that_fails_half_way_leaves_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    _alembic_store(path, events=3)
    broken = Migration(
        version=2,
        title="broken",
        sqlite=("ALTER TABLE events ADD COLUMN hash BLOB", "CREATE TABLE oops (x) nonsense"),
        postgres=(),
    )
    monkeypatch.setattr(_sqlite_file, "pending", lambda found: (broken,) if found < 2 else ())
    with pytest.raises(StoreError, match="unknown table option: nonsense"):
        await SqliteStore.open(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
        assert "hash" not in columns
    monkeypatch.undo()
    async with await SqliteStore.open(path) as store:
        assert (await store.check()).events_checked == 3
