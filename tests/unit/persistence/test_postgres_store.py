from __future__ import annotations

import asyncio

import psycopg
import pytest

from loomkin.errors import ConfigError, CorruptStoreError, SchemaVersionError, StoreError
from loomkin.persistence import PostgresStore
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
