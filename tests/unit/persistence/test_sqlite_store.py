from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ConfigError, CorruptStoreError, SchemaVersionError
from loomkin.persistence import SqliteStore
from loomkin.testing.conformance import task_event

if TYPE_CHECKING:
    from pathlib import Path


async def _filled(path: Path, events: int = 300) -> None:
    async with await SqliteStore.open(path) as store:
        for _ in range(0, events, 100):
            await store.append([task_event(f"t{i % 7}", title="x" * 200) for i in range(100)])
        assert await store.last_position() == events


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


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
