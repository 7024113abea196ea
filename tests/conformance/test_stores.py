"""The shipped conformance suite, run against every backend (the real Postgres server too)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from loomkin.persistence import MemoryStore, PostgresStore, SqliteStore
from loomkin.testing.conformance import (
    EventStoreConformance,
    postgres_test_url,
    scratch_postgres_schema,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.core.store import EventStore


def _changes(
    kind: str | None, schema_version: int | None, data: str | None
) -> dict[str, str | int]:
    changes = {"kind": kind, "schema_version": schema_version, "data": data}
    return {name: value for name, value in changes.items() if value is not None}


class TestMemoryStore(EventStoreConformance):
    max_examples = 100

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[EventStore]:
        store = MemoryStore()
        try:
            yield store
        finally:
            await store.close()

    async def damage_row(
        self,
        store: EventStore,
        position: int,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
    ) -> None:
        assert isinstance(store, MemoryStore)
        row = list(store._rows[position - 1])  # the stored columns, as a database holds them
        for index, value in ((5, kind), (6, schema_version), (7, data)):
            if value is not None:
                row[index] = value
        store._rows[position - 1] = tuple(row)
        store._events[position - 1] = None  # decode from the damaged row on every read


class TestSqliteStore(EventStoreConformance):
    max_examples = 40

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[EventStore]:
        with tempfile.TemporaryDirectory(prefix="loomkin-store-") as folder:
            store = await SqliteStore.open(Path(folder) / "loomkin.db")
            try:
                yield store
            finally:
                await store.close()

    async def damage_row(
        self,
        store: EventStore,
        position: int,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
    ) -> None:
        assert isinstance(store, SqliteStore)
        changes = _changes(kind, schema_version, data)
        assignments = ", ".join(f"{name} = ?" for name in changes)

        def update() -> None:
            with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
                sql = f"UPDATE events SET {assignments} WHERE position = ?"
                conn.execute(sql, [*changes.values(), position])

        await asyncio.to_thread(update)


@pytest.mark.postgres
class TestPostgresStore(EventStoreConformance):
    max_examples = 15

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[EventStore]:
        url = postgres_test_url()
        async with scratch_postgres_schema(url) as schema:
            store = await PostgresStore.open(url, schema=schema)
            self._url, self._schema = url, schema
            try:
                yield store
            finally:
                await store.close()

    async def damage_row(
        self,
        store: EventStore,
        position: int,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
    ) -> None:
        changes = _changes(kind, schema_version, data)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(name)) for name in changes
        )
        update = sql.SQL("UPDATE events SET {} WHERE position = %s").format(assignments)
        options = f"-c search_path={self._schema}"
        async with await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, options=options
        ) as conn:
            await conn.execute(update, [*changes.values(), position])
