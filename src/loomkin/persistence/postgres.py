"""PostgreSQL event store: for shared and multi-process deployments.

How this works and why:

* **Gapless positions under concurrent writers.** A sequence (``SERIAL``) would leave gaps on
  rollback and, worse, let position 11 commit before position 10, so a reader tailing by
  position could skip an event for good. Instead every append takes ``LOCK TABLE events IN
  EXCLUSIVE MODE`` inside its transaction, reads ``MAX(position)`` and numbers the batch itself.
  The lock admits plain reads (``ACCESS SHARE``) but no second writer until commit, so
  positions become visible strictly in order and readers always see a gapless prefix. The rows
  go in with one ``COPY`` (about four times the rate of a pipelined ``executemany``), and each
  stream's current version is one index seek, so an append costs the same on a long log.
* **One connection per store, one operation at a time.** A psycopg connection runs one
  transaction at a time; an ``asyncio.Lock`` keeps concurrent callers from interleaving
  statements. Several processes (or stores) coordinate through the table lock.
* **Operations run to completion.** Each call runs as a task the store owns and shields: if the
  caller is cancelled, the statement still finishes (or rolls back) instead of leaving the
  connection half-way through a protocol exchange. ``close`` waits for them.
* **Schemas.** ``schema`` selects a Postgres schema (created on first open) through the
  connection's ``search_path``; tests use a fresh one each. The payload column is ``TEXT``
  holding the same JSON text as SQLite, so both backends decode (and reject) rows alike.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Self, TypeVar

import psycopg

from loomkin.errors import ConfigError, CorruptStoreError, StoreError
from loomkin.persistence import _schema
from loomkin.persistence._rows import COLUMNS, check_expected, decode_rows, plan_batch

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping, Sequence
    from types import TracebackType

    from loomkin.core.events import NewEvent, RecordedEvent

__all__ = ["PostgresStore", "redact_url"]

_T = TypeVar("_T")
_Conn = psycopg.AsyncConnection[tuple[Any, ...]]
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_COPY = f"COPY events ({COLUMNS}, session_id) FROM STDIN"
_READ = f"SELECT {COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"
_READ_SESSION = (
    f"SELECT {COLUMNS} FROM events WHERE session_id = %s AND position > %s "
    "ORDER BY position LIMIT %s"
)
_READ_STREAM = (
    f"SELECT {COLUMNS} FROM events WHERE stream = %s AND stream_version > %s "
    "ORDER BY stream_version"
)
# One index seek per stream (a plain GROUP BY would aggregate every row of those streams).
_STREAM_VERSIONS = (
    "SELECT s.stream, (SELECT MAX(stream_version) FROM events WHERE stream = s.stream) "
    "FROM unnest(%s::text[]) AS s(stream)"
)
_LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM events"


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for error messages and logs)."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


class PostgresStore:
    """An :class:`~loomkin.core.store.EventStore` in a PostgreSQL schema.

    Create it with :meth:`open` (which migrates the schema); use it as an async context
    manager or call :meth:`close`.
    """

    def __init__(self, conn: _Conn, *, url: str, schema: str):
        self._conn = conn
        self._where = f"Postgres store {redact_url(url)!r} (schema {schema!r})"
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, schema: str = "public") -> PostgresStore:
        """Connect to ``url`` and open (creating and migrating if needed) the store in ``schema``.

        Args:
            url: a libpq connection URL, e.g. ``postgresql://postgres@127.0.0.1:5432/test``.
            schema: the Postgres schema holding the tables (lower-case letters, digits, ``_``).

        Raises:
            ConfigError: ``schema`` is not a plain lower-case identifier.
            StoreError: the server cannot be reached.
            CorruptStoreError: the schema holds tables that are not a Loomkin store.
            SchemaVersionError: the schema was written by a newer Loomkin.
        """
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(
                f"Postgres schema {schema!r} must be lower-case letters, digits and '_' "
                "(at most 63, not starting with a digit)"
            )
        options = f"-c search_path={schema}"
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True, options=options)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to Postgres at {redact_url(url)!r}: {exc}") from None
        store = cls(conn, url=url, schema=schema)
        try:
            await store._migrate(url, schema, options)
        except BaseException:
            await conn.close()
            raise
        return store

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
    ) -> list[RecordedEvent]:
        return await self._run(self._append(list(events), expected_versions))

    async def read(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        session_id: str | None = None,
    ) -> list[RecordedEvent]:
        sql_limit = None if limit is None else max(limit, 0)
        if session_id is None:
            return await self._run(self._select(_READ, (after, sql_limit)))
        return await self._run(self._select(_READ_SESSION, (session_id, after, sql_limit)))

    async def read_stream(self, stream: str, after: int = 0) -> list[RecordedEvent]:
        return await self._run(self._select(_READ_STREAM, (stream, after)))

    async def last_position(self) -> int:
        return await self._run(self._last_position())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self._conn.close()

    async def _run(self, operation: Coroutine[object, object, _T]) -> _T:
        if self._closed:
            operation.close()
            raise StoreError(f"the {self._where} is closed")
        task = asyncio.create_task(self._locked(operation))
        self._tasks.add(task)  # owned until done; close() waits for the rest
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case the caller was cancelled

    async def _locked(self, operation: Coroutine[object, object, _T]) -> _T:
        async with self._lock:
            try:
                return await operation
            except psycopg.Error as exc:
                raise StoreError(f"{self._where}: {exc}") from exc

    async def _append(
        self, events: list[NewEvent], expected: Mapping[str, int] | None
    ) -> list[RecordedEvent]:
        conn = self._conn
        streams = sorted({new.event.stream() for new in events} | set(expected or ()))
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
                last = await self._scalar(_LAST_POSITION)
                cursor = await conn.execute(_STREAM_VERSIONS, (streams,))
                current = {str(s): int(v) for s, v in await cursor.fetchall() if v is not None}
                check_expected(current, expected)
                batch = plan_batch(events, last_position=last, stream_versions=current)
                async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                    for row in batch.rows:
                        await copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            raise await self._duplicate_ids(events) from None
        return batch.recorded

    async def _duplicate_ids(self, events: list[NewEvent]) -> StoreError:
        ids = [new.event_id for new in events]
        cursor = await self._conn.execute(
            "SELECT event_id FROM events WHERE event_id = ANY(%s)", (ids,)
        )
        found = sorted(str(row[0]) for row in await cursor.fetchall())
        return StoreError(f"event ids already stored, nothing appended: {found!r}")

    async def _select(self, sql: str, params: tuple[object, ...]) -> list[RecordedEvent]:
        cursor = await self._conn.execute(sql, params)
        return decode_rows(await cursor.fetchall())

    async def _last_position(self) -> int:
        return await self._scalar(_LAST_POSITION)

    async def _scalar(self, sql: str) -> int:
        cursor = await self._conn.execute(sql)
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def _migrate(self, url: str, schema: str, options: str) -> None:
        if _schema.needs_upgrade(await self._read_version(schema), where=self._where):

            def connect() -> psycopg.Connection[tuple[Any, ...]]:
                return psycopg.connect(url, options=options)

            await asyncio.to_thread(
                _schema.upgrade, "postgresql+psycopg://", connect, schema=schema
            )
            _schema.needs_upgrade(await self._read_version(schema), where=self._where)
        try:
            await self._conn.execute(f"SELECT {COLUMNS}, session_id FROM events LIMIT 0")
        except psycopg.errors.UndefinedColumn as exc:
            raise CorruptStoreError(f"{self._where} has the wrong table layout: {exc}") from None

    async def _read_version(self, schema: str) -> str | None:
        cursor = await self._conn.execute(
            "SELECT to_regclass(%s)::text, to_regclass(%s)::text",
            (f"{schema}.alembic_version", f"{schema}.events"),
        )
        row = await cursor.fetchone()
        assert row is not None
        version_table, events_table = row
        if version_table is None:
            if events_table is not None:
                raise CorruptStoreError(
                    f"{self._where} has an events table but no Loomkin schema version"
                )
            return None
        cursor = await self._conn.execute("SELECT version_num FROM alembic_version")
        found = await cursor.fetchone()
        return None if found is None else str(found[0])
