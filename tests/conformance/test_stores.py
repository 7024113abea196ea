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

    from loomkin.core.store import Store


def _changes(
    kind: str | None, schema_version: int | None, data: str | None, digest: bytes | None
) -> dict[str, str | int | bytes]:
    changes = {"kind": kind, "schema_version": schema_version, "data": data, "hash": digest}
    return {name: value for name, value in changes.items() if value is not None}


class TestMemoryStore(EventStoreConformance):
    max_examples = 100

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[Store]:
        store = MemoryStore()
        try:
            yield store
        finally:
            await store.close()

    async def damage_row(
        self,
        store: Store,
        position: int,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
        digest: bytes | None = None,
    ) -> None:
        assert isinstance(store, MemoryStore)
        row = list(store._rows[position - 1])  # the stored columns, as a database holds them
        for index, value in ((5, kind), (6, schema_version), (7, data), (9, digest)):
            if value is not None:
                row[index] = value
        store._rows[position - 1] = tuple(row)
        store._events[position - 1] = None  # decode from the damaged row on every read

    async def delete_row(self, store: Store, position: int) -> None:
        assert isinstance(store, MemoryStore)
        index = next(i for i, row in enumerate(store._rows) if row[0] == position)
        del store._rows[index]  # only check() reads raw rows, so only it must notice
        del store._events[index]


class TestSqliteStore(EventStoreConformance):
    max_examples = 40

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[Store]:
        with tempfile.TemporaryDirectory(prefix="loomkin-store-") as folder:
            store = await SqliteStore.open(Path(folder) / "loomkin.db")
            try:
                yield store
            finally:
                await store.close()

    async def damage_row(
        self,
        store: Store,
        position: int,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
        digest: bytes | None = None,
    ) -> None:
        changes = _changes(kind, schema_version, data, digest)
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await self._execute(
            store,
            f"UPDATE events SET {assignments} WHERE position = ?",
            *changes.values(),
            position,
        )

    async def delete_row(self, store: Store, position: int) -> None:
        await self._execute(store, "DELETE FROM events WHERE position = ?", position)

    async def refuse_event(self, store: Store, event_id: str) -> None:
        await self._execute(
            store,
            f"CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.event_id = '{event_id}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END",
        )

    async def _execute(self, store: Store, statement: str, *params: object) -> None:
        assert isinstance(store, SqliteStore)

        def run() -> None:
            with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
                conn.execute(statement, params)

        await asyncio.to_thread(run)


@pytest.mark.postgres
class TestPostgresStore(EventStoreConformance):
    max_examples = 15

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[Store]:
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
        store: Store,
        position: int,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
        digest: bytes | None = None,
    ) -> None:
        changes = _changes(kind, schema_version, data, digest)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(name)) for name in changes
        )
        update = sql.SQL("UPDATE events SET {} WHERE position = %s").format(assignments)
        await self._execute(update, *changes.values(), position)

    async def delete_row(self, store: Store, position: int) -> None:
        await self._execute(sql.SQL("DELETE FROM events WHERE position = %s"), position)

    async def refuse_event(self, store: Store, event_id: str) -> None:
        await self._execute(
            sql.SQL(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.event_id = {} THEN RAISE EXCEPTION 'refused by a test trigger'; END IF; "
                "RETURN NEW; END $$"
            ).format(sql.Literal(event_id))
        )
        await self._execute(
            sql.SQL(
                "CREATE TRIGGER refuse BEFORE INSERT ON events "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )

    async def _execute(self, statement: sql.Composable, *params: object) -> None:
        options = f"-c search_path={self._schema}"
        async with await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, options=options
        ) as conn:
            await conn.execute(statement, params or None)
