from __future__ import annotations

import asyncio

import psycopg
import pytest

from loomkin.errors import (
    ConfigError,
    CorruptStoreError,
    SchemaVersionError,
    StaleEpoch,
    StoreError,
)
from loomkin.ids import SessionId
from loomkin.persistence import PostgresStore
from loomkin.persistence._rows import INSERT_COLUMNS, plan_batch
from loomkin.testing.conformance import task_event

pytestmark = pytest.mark.postgres


async def _execute(url: str, schema: str, statement: str) -> None:
    options = f"-c search_path={schema}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, options=options) as c:
        await c.execute(statement.encode())


async def test_concurrent_stores_keep_positions_gapless_and_ordered(
    pg_url: str, pg_schema: str
) -> None:
    stores = [await PostgresStore.open(pg_url, schema=pg_schema) for _ in range(4)]
    try:
        batches = [[task_event(f"t{i % 5}") for _ in range(1 + i % 7)] for i in range(60)]
        results = await asyncio.gather(
            *(stores[i % 4].append(batch) for i, batch in enumerate(batches))
        )
        for recorded in results:
            first = recorded[0].position
            assert [e.position for e in recorded] == list(range(first, first + len(recorded)))
        events = await stores[0].read()
        assert [e.position for e in events] == list(range(1, sum(map(len, batches)) + 1))
        for stream in {e.stream for e in events}:
            versions = [e.stream_version for e in await stores[1].read_stream(stream)]
            assert versions == list(range(1, len(versions) + 1))
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_first_opens_migrate_once(pg_url: str, pg_schema: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(pg_url, schema=pg_schema) for _ in range(4)))
    for store in stores:
        assert await store.last_position() == 0
        await store.close()


async def test_events_survive_close_and_reopen(pg_url: str, pg_schema: str) -> None:
    async with await PostgresStore.open(pg_url, schema=pg_schema) as store:
        appended = await store.append([task_event("a"), task_event("b")])
    async with await PostgresStore.open(pg_url, schema=pg_schema) as store:
        assert await store.read() == appended


async def test_a_cancelled_append_leaves_the_store_usable(pg_url: str, pg_schema: str) -> None:
    async with await PostgresStore.open(pg_url, schema=pg_schema) as store:
        for _ in range(5):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):  # cancels the caller once the append started
                    await store.append([task_event("a") for _ in range(50)])
        # Each started append runs to completion (all or nothing), then the store goes on.
        recorded = await store.append([task_event("b")])
        positions = [e.position for e in await store.read()]
        assert positions == list(range(1, recorded[0].position + 1))
        assert len(positions) % 50 == 1


async def test_a_newer_schema_version_is_refused_naming_both(pg_url: str, pg_schema: str) -> None:
    await (await PostgresStore.open(pg_url, schema=pg_schema)).close()
    await _execute(pg_url, pg_schema, "UPDATE schema_version SET version = 7")
    with pytest.raises(SchemaVersionError, match=r"version 7, newer than .* up to 2"):
        await PostgresStore.open(pg_url, schema=pg_schema)


async def test_a_foreign_events_table_is_refused(pg_url: str, pg_schema: str) -> None:
    await _execute(pg_url, "public", f"CREATE SCHEMA {pg_schema}")
    await _execute(pg_url, pg_schema, "CREATE TABLE events (id int)")
    with pytest.raises(CorruptStoreError, match="no Loomkin schema version"):
        await PostgresStore.open(pg_url, schema=pg_schema)


async def test_wrong_table_layout_is_refused(pg_url: str, pg_schema: str) -> None:
    await (await PostgresStore.open(pg_url, schema=pg_schema)).close()
    await _execute(pg_url, pg_schema, "ALTER TABLE events DROP COLUMN session_id")
    with pytest.raises(CorruptStoreError, match="wrong table layout"):
        await PostgresStore.open(pg_url, schema=pg_schema)


async def test_bad_schema_name_is_a_config_error(pg_url: str) -> None:
    with pytest.raises(ConfigError, match="'Robert; DROP'"):
        await PostgresStore.open(pg_url, schema="Robert; DROP")


async def test_unreachable_server_names_it_without_the_password() -> None:
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1") as caught:
        await PostgresStore.open("postgresql://me:s3cret@127.0.0.1:1/test?connect_timeout=2")
    assert "s3cret" not in str(caught.value)


# Exactly what Alembic's revision "0001" created (``pg_dump --schema-only`` of a store it made).
ALEMBIC_0001 = """
CREATE TABLE alembic_version (
    version_num character varying(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE events (
    "position" bigint NOT NULL,
    event_id text NOT NULL,
    stream text NOT NULL,
    stream_version bigint NOT NULL,
    session_id text NOT NULL,
    kind text NOT NULL,
    schema_version integer NOT NULL,
    recorded_at double precision NOT NULL,
    data text NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY ("position"),
    CONSTRAINT uq_events_event_id UNIQUE (event_id),
    CONSTRAINT uq_events_stream_version UNIQUE (stream, stream_version)
);
CREATE INDEX ix_events_session_position ON events USING btree (session_id, "position");
INSERT INTO alembic_version VALUES ('0001');
"""


async def _alembic_schema(url: str, schema: str, events: int) -> list[str]:
    await _execute(url, "public", f"CREATE SCHEMA {schema}")
    await _execute(url, schema, ALEMBIC_0001)
    batch = [task_event(f"t{i % 7}", session=f"s{i % 2}") for i in range(events)]
    planned = plan_batch(batch, last_position=0, last_hash=bytes(32), stream_versions={})
    columns = INSERT_COLUMNS.removesuffix(", hash")
    options = f"-c search_path={schema}"
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True, options=options) as conn,
        conn.cursor() as cursor,
        cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy,
    ):
        for row in planned.rows:
            await copy.write_row(row[:9])
    return [e.event_id for e in batch]


async def test_a_schema_alembic_created_is_migrated_and_chained(
    pg_url: str, pg_schema: str
) -> None:
    ids = await _alembic_schema(pg_url, pg_schema, events=2300)  # several backfill pages
    async with await PostgresStore.open(pg_url, schema=pg_schema) as store:
        assert [e.event_id for e in await store.read()] == ids
        report = await store.check()
        assert (report.ok, report.events_checked) == (True, 2300), report
        lease = await store.acquire_lease(SessionId("s1"), "me", ttl_s=5.0)
        await store.append([task_event("new", session="s1")], fences=[lease.fence])
        assert (await store.check()).events_checked == 2301
    options = f"-c search_path={pg_schema}"
    async with await psycopg.AsyncConnection.connect(pg_url, options=options) as conn:
        cursor = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (pg_schema,),
        )
        assert {r[0] for r in await cursor.fetchall()} == {"events", "leases", "schema_version"}
        cursor = await conn.execute("SELECT version FROM schema_version")
        assert await cursor.fetchall() == [(2,)]


async def test_an_unknown_alembic_revision_is_refused(pg_url: str, pg_schema: str) -> None:
    await _alembic_schema(pg_url, pg_schema, events=2)
    await _execute(pg_url, pg_schema, "UPDATE alembic_version SET version_num = 'ae1027a6acf'")
    with pytest.raises(SchemaVersionError, match=r"unknown \(Alembic\) schema version"):
        await PostgresStore.open(pg_url, schema=pg_schema)


async def test_lease_times_come_from_the_server_clock(pg_url: str, pg_schema: str) -> None:
    async with await PostgresStore.open(pg_url, schema=pg_schema) as store:
        lease = await store.acquire_lease(SessionId("s1"), "me", ttl_s=60.0)
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            cursor = await conn.execute("SELECT extract(epoch FROM now())::float8")
            row = await cursor.fetchone()
        assert row is not None
        assert lease.since <= row[0] < lease.since + 60.0
        assert lease.expires_at == lease.since + 60.0


@pytest.mark.parametrize("where", ["between two statements", "in its COPY"])
async def test_a_writer_frozen_inside_an_append_blocks_no_take_over_and_is_refused_after(
    pg_url: str,
    pg_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    """A writer stopped half-way through an append (SIGSTOP, a paused VM) holds the table lock
    and the fenced lease row; the server (idle in a transaction) or the next writer (a COPY
    waiting on its client) ends its transaction, so a take-over goes through, and when the
    frozen writer wakes up its append is refused for its stale fence: nothing of it lands."""
    frozen_store = await PostgresStore.open(
        pg_url, schema=pg_schema, idle_in_transaction_timeout_s=0.3
    )
    other = await PostgresStore.open(pg_url, schema=pg_schema, idle_in_transaction_timeout_s=0.3)
    frozen, thaw = asyncio.Event(), asyncio.Event()
    frozen_conn = frozen_store._conn

    async def freeze_once() -> None:
        if not frozen.is_set():
            frozen.set()
            await thaw.wait()

    if where == "in its COPY":
        write_row = psycopg.AsyncCopy.write_row

        async def stuck_write_row(copy: psycopg.AsyncCopy, row: object) -> None:
            if copy.connection is frozen_conn:
                await freeze_once()
            await write_row(copy, row)

        monkeypatch.setattr(psycopg.AsyncCopy, "write_row", stuck_write_row)
    else:
        newest = frozen_store._newest

        async def stuck_newest() -> tuple[int, bytes]:
            await freeze_once()
            return await newest()

        monkeypatch.setattr(frozen_store, "_newest", stuck_newest)
    try:
        session = SessionId("s1")
        lease = await frozen_store.acquire_lease(session, "frozen", ttl_s=60.0)
        late = [task_event("late") for _ in range(3)]
        stale = asyncio.create_task(frozen_store.append(late, fences=[lease.fence]))
        await frozen.wait()
        taken = await asyncio.wait_for(
            other.acquire_lease(session, "survivor", ttl_s=60.0, take_over=True), 30
        )
        assert taken.epoch == lease.epoch + 1
        written = await other.append([task_event("next")], fences=[taken.fence])
        thaw.set()
        with pytest.raises(StaleEpoch, match=r"taken over by .*survivor"):
            await asyncio.wait_for(stale, 30)
        log = await other.read()
        assert [e.event_id for e in log] == [e.event_id for e in written]
        # The woken writer's store works on, on a new connection.
        assert await frozen_store.last_position() == written[-1].position
        if where == "in its COPY":  # the server cannot time that out: the waiter ended it
            assert "ended the frozen append" in caplog.text
    finally:
        thaw.set()
        await frozen_store.close()
        await other.close()
