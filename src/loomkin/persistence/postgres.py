"""PostgreSQL event store: for shared and multi-process deployments.

How this works and why:

* **Gapless positions under concurrent writers.** A sequence (``SERIAL``) would leave gaps on
  rollback and, worse, let position 11 commit before position 10, so a reader tailing by
  position could skip an event for good. Instead every append takes ``LOCK TABLE events IN
  EXCLUSIVE MODE`` inside its transaction, reads the newest row's position and chain hash and
  numbers the batch itself. The lock admits plain reads (``ACCESS SHARE``) but no second
  writer until commit, so positions become visible strictly in order and readers always see a
  gapless prefix. The rows go in with one ``COPY`` (about four times the rate of a pipelined
  ``executemany``), and each stream's current version is one index seek, so an append costs
  the same on a long log. A row the server refuses half-way aborts the whole transaction.
* **Fences in the insert's transaction.** After the table lock, the append reads the fenced
  sessions' lease rows ``FOR SHARE`` and checks the epochs; the rows go in only if they hold.
  The row lock is what makes the check and the insert one atomic step even under ``READ
  COMMITTED`` (where each statement sees a new snapshot): a take-over (``SELECT … FOR
  UPDATE`` on the same row) waits until the append commits, and an append that starts after
  the take-over committed sees the new epoch. So once ``acquire_lease(take_over=True)``
  returns, no append of the old holder can land. Lease operations never lock ``events``, so
  the two lock orders cannot deadlock.
* **Server time.** Lease expiry uses ``now()`` of the server (the start of the lease
  operation's transaction) unless the caller passes ``now``, so hosts with skewed clocks agree.
* **A stopped writer cannot block the others for long.** A writer frozen half-way through an
  append (SIGSTOP, a paused VM, a partition between two statements) would hold the table lock
  and its fenced lease rows until its transaction ends, so every other writer, and the
  take-over of its sessions, would wait for it forever. The server ends a connection of ours
  that sits idle inside a transaction for :data:`IDLE_IN_TRANSACTION_TIMEOUT_S`, which rolls
  it back and frees the locks; a writer (or take-over) waiting behind it checks every second
  and ends it sooner, after :data:`FROZEN_WRITER_S` of waiting on its client, also inside a
  ``COPY``, where no server timeout applies. When the frozen writer wakes up, its connection
  is gone: the store reconnects, and an append whose transaction was rolled back before its
  ``COMMIT`` is tried once more in a new one, where a fence that went stale meanwhile is
  refused (:class:`~loomkin.errors.StaleEpoch`) like any other. So a partitioned writer
  learns that it lost its session, not just that its connection broke. (A retry cannot
  duplicate events: event ids are unique.)
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
import logging
import re
from typing import TYPE_CHECKING, Any, Self, TypeVar

import psycopg

from loomkin.errors import ConfigError, CorruptStoreError, StoreError
from loomkin.persistence._chain import CHAIN_COLUMNS, GENESIS
from loomkin.persistence._check import walk_log
from loomkin.persistence._leases import (
    LEASE_COLUMNS,
    acquired,
    check_fences,
    lease_from_row,
    lease_row,
    released,
    renewed,
)
from loomkin.persistence._migrations import (
    ALEMBIC_TABLE,
    LATEST,
    VERSION_TABLE,
    chain_backfill,
    pending,
    version_found,
)
from loomkin.persistence._rows import (
    COLUMNS,
    INSERT_COLUMNS,
    check_expected,
    decode_rows,
    plan_batch,
)
from loomkin.persistence._urls import redact_url

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence
    from types import TracebackType

    from loomkin.core.events import NewEvent, RecordedEvent
    from loomkin.core.store import CheckReport, Fence, Lease
    from loomkin.ids import SessionId
    from loomkin.persistence._rows import StoredRow

__all__ = ["PostgresStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_Conn = psycopg.AsyncConnection[tuple[Any, ...]]
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_COPY = f"COPY events ({INSERT_COLUMNS}) FROM STDIN"
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
_HEAD = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"
_READ_CHAIN = f"SELECT {CHAIN_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"
_FENCED_LEASES = f"SELECT {LEASE_COLUMNS} FROM leases WHERE session_id = ANY(%s) FOR SHARE"
_LEASE = f"SELECT {LEASE_COLUMNS} FROM leases WHERE session_id = %s"
# A placeholder row (epoch 0, released) gives a never-leased session a row to lock, so two
# first acquisitions serialize on ``FOR UPDATE`` instead of racing to insert.
_LEASE_PLACEHOLDER = (
    f"INSERT INTO leases ({LEASE_COLUMNS}) VALUES (%s, 0, '', '', 0, 0, 0, 0, true) "
    "ON CONFLICT (session_id) DO NOTHING"
)
_LOCK_LEASE = f"{_LEASE} FOR UPDATE"
_PUT_LEASE = (
    "UPDATE leases SET epoch = %s, holder = %s, host = %s, pid = %s, since = %s, "
    "expires_at = %s, ttl_s = %s, released = %s WHERE session_id = %s"
)
FROZEN_WRITER_S = 1.0
"""How long an append holding our events table may wait on its client before a writer
waiting behind it ends it as frozen (see ``PostgresStore._end_frozen_writers``)."""

# Bounded lock waits (``SET LOCAL``: this transaction only) let a waiting writer notice a frozen
# one (see ``_end_frozen_writers``); it then waits again. One round trip for both statements.
_LOCK_WAIT_MS = 1000
_LOCK_EVENTS = f"SET LOCAL lock_timeout = {_LOCK_WAIT_MS}; LOCK TABLE events IN EXCLUSIVE MODE"
_BOUND_LOCK_WAIT = f"SET LOCAL lock_timeout = {_LOCK_WAIT_MS}"
_FROZEN_WRITERS = (
    "SELECT a.pid, pg_terminate_backend(a.pid) FROM pg_stat_activity AS a "
    "WHERE a.pid <> pg_backend_pid() AND a.wait_event = 'ClientRead' "
    "AND (a.state = 'idle in transaction' OR a.query LIKE 'COPY events (%%') "
    "AND a.state_change < now() - make_interval(secs => %s) "
    "AND EXISTS (SELECT 1 FROM pg_locks AS l WHERE l.pid = a.pid AND l.granted "
    "AND l.relation = 'events'::regclass)"
)
_REFUSED_ROW = (psycopg.IntegrityError, psycopg.DataError, psycopg.errors.RaiseException)
_SERVER_NOW = "SELECT COALESCE(%s::float8, extract(epoch FROM now())::float8)"
_BACKFILL_PAGE = 1000

IDLE_IN_TRANSACTION_TIMEOUT_S = 5.0
"""How long the server lets a connection of a store sit idle inside a transaction.

Our transactions send their statements back to back (milliseconds), so only a writer that
stopped running in the middle of one (SIGSTOP, a paused VM) reaches it; until then it holds
``LOCK TABLE events`` and blocks every other writer and every take-over of its sessions.
A few seconds: well above any pause of a live event loop between two statements (and a
live writer that did pause that long only retries its append), well below the lease TTL
(10 s by default), so a take-over waits for a frozen writer less than for its lease."""


class PostgresStore:
    """A :class:`~loomkin.core.store.Store` in a PostgreSQL schema.

    Create it with :meth:`open` (which creates or migrates the schema); use it as an async
    context manager or call :meth:`close`.
    """

    def __init__(
        self,
        conn: _Conn,
        *,
        url: str,
        schema: str,
        options: str = "",
        idle_s: float = IDLE_IN_TRANSACTION_TIMEOUT_S,
    ):
        self._conn = conn
        self._url = url
        self._options = options
        self._idle_s = idle_s
        self._schema = schema
        self._where = f"Postgres store {redact_url(url)!r} (schema {schema!r})"
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        schema: str = "public",
        idle_in_transaction_timeout_s: float = IDLE_IN_TRANSACTION_TIMEOUT_S,
    ) -> PostgresStore:
        """Connect to ``url`` and open (creating and migrating if needed) the store in ``schema``.

        Args:
            url: a libpq connection URL, e.g. ``postgresql://postgres@127.0.0.1:5432/test``.
            schema: the Postgres schema holding the tables (lower-case letters, digits, ``_``).
            idle_in_transaction_timeout_s: how long the server keeps a transaction of this
                store whose writer stopped running (see :data:`IDLE_IN_TRANSACTION_TIMEOUT_S`).

        Raises:
            ConfigError: ``schema`` is not a plain lower-case identifier.
            StoreError: the server cannot be reached.
            CorruptStoreError: the schema holds an events table that is not a Loomkin store's.
            SchemaVersionError: the schema was written by a newer Loomkin.
        """
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(
                f"Postgres schema {schema!r} must be lower-case letters, digits and '_' "
                "(at most 63, not starting with a digit)"
            )
        if not idle_in_transaction_timeout_s > 0:
            raise ConfigError(
                "idle_in_transaction_timeout_s must be a positive number of seconds, "
                f"not {idle_in_transaction_timeout_s!r}"
            )
        idle_ms = max(1, round(idle_in_transaction_timeout_s * 1000))
        options = f"-c search_path={schema} -c idle_in_transaction_session_timeout={idle_ms}"
        conn = await _connect(url, options)
        store = cls(
            conn, url=url, schema=schema, options=options, idle_s=idle_in_transaction_timeout_s
        )
        try:
            await store._run(store._open_schema())
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
        fences: Sequence[Fence] = (),
    ) -> list[RecordedEvent]:
        return await self._run(self._append(list(events), expected_versions, list(fences)))

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
        return await self._run(self._scalar(_LAST_POSITION))

    async def check(self) -> CheckReport:
        async def fetch(after: int, limit: int) -> list[StoredRow]:
            return await self._run(self._raw(_READ_CHAIN, (after, limit)))

        walked, problem = await walk_log(fetch)
        return walked.report() if problem is None else walked.report(*problem)

    async def acquire_lease(
        self,
        session_id: SessionId,
        holder: str,
        *,
        ttl_s: float,
        host: str | None = None,
        pid: int | None = None,
        take_over: bool = False,
        now: float | None = None,
    ) -> Lease:
        def decide(current: Lease | None, at: float) -> Lease:
            return acquired(
                current, session_id, holder,
                ttl_s=ttl_s, host=host, pid=pid, take_over=take_over, now=at,
            )  # fmt: skip

        lease = await self._run(self._update_lease(session_id, decide, now))
        assert lease is not None
        return lease

    async def renew_lease(
        self, lease: Lease, *, ttl_s: float | None = None, now: float | None = None
    ) -> Lease:
        def decide(current: Lease | None, at: float) -> Lease:
            return renewed(current, lease, ttl_s=ttl_s, now=at)

        new = await self._run(self._update_lease(lease.session_id, decide, now))
        assert new is not None
        return new

    async def release_lease(self, lease: Lease, *, now: float | None = None) -> bool:
        def decide(current: Lease | None, at: float) -> Lease | None:
            return released(current, lease, now=at)

        return await self._run(self._update_lease(lease.session_id, decide, now)) is not None

    async def current_lease(self, session_id: SessionId) -> Lease | None:
        return await self._run(self._lease(_LEASE, session_id))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self._conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the {self._where} is closed")

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
                if self._conn.broken:  # the server ended it (a stopped writer, a restart)
                    await self._reconnect()
                return await operation
            except psycopg.Error as exc:
                raise StoreError(f"{self._where}: {exc}") from exc
            finally:
                operation.close()  # not started when reconnecting failed

    async def _reconnect(self) -> None:
        old = self._conn
        self._conn = await _connect(self._url, self._options)
        await old.close()

    async def _append(
        self, events: list[NewEvent], expected: Mapping[str, int] | None, fences: list[Fence]
    ) -> list[RecordedEvent]:
        reconnected = False
        while True:
            try:
                return await self._append_once(events, expected, fences)
            except _LockWait:
                await self._end_frozen_writers()
            except _RolledBack as exc:
                # The server ended the connection before our COMMIT (this writer stopped
                # inside the transaction for too long): nothing was written, so the append is
                # tried once more, where a fence that went stale meanwhile is refused.
                if reconnected:
                    raise StoreError(f"{self._where}: {exc.__cause__}; nothing appended") from None
                reconnected = True
                await self._reconnect()

    async def _append_once(
        self, events: list[NewEvent], expected: Mapping[str, int] | None, fences: list[Fence]
    ) -> list[RecordedEvent]:
        conn = self._conn
        committing = False
        streams = sorted({new.event.stream() for new in events} | set(expected or ()))
        try:
            async with conn.transaction():
                await conn.execute(_LOCK_EVENTS)
                if fences:
                    sessions = sorted({f.session_id for f in fences})
                    cursor = await conn.execute(_FENCED_LEASES, (sessions,))
                    held = [_live_row(row) for row in await cursor.fetchall()]
                    check_fences(fences, {lease.session_id: lease for lease in held if lease})
                last, last_hash = await self._newest()
                cursor = await conn.execute(_STREAM_VERSIONS, (streams,))
                current = {str(s): int(v) for s, v in await cursor.fetchall() if v is not None}
                check_expected(current, expected)
                batch = plan_batch(
                    events, last_position=last, last_hash=last_hash, stream_versions=current
                )
                if batch.rows:
                    async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                        for row in batch.rows:
                            await copy.write_row(row)
                committing = True
        except psycopg.errors.LockNotAvailable:
            raise _LockWait from None
        except psycopg.Error as exc:
            if conn.broken and (not committing or _ended_idle(exc)):
                raise _RolledBack from exc
            if isinstance(exc, psycopg.errors.UniqueViolation):
                raise await self._duplicate_ids(events) from None
            if isinstance(exc, _REFUSED_ROW):
                # The server refused a row before COMMIT, so the transaction is rolled back.
                # (A connection lost at COMMIT is not caught here: its outcome is unknown.)
                raise StoreError(f"{self._where} refused a row ({exc}); nothing appended") from None
            raise
        return batch.recorded

    async def _end_frozen_writers(self) -> None:
        """End the appends holding our events table that wait on a stopped client.

        A writer stopped half-way through an append (SIGSTOP, a paused VM) holds the table
        lock and its fenced lease rows. The server ends it after the idle timeout when it
        stopped between two statements, but not when it stopped inside its ``COPY`` (a
        backend reading ``COPY`` data ignores ``statement_timeout`` and is not idle), and a
        writer waiting on it need not wait for the timeout either: an append waits on its
        client for milliseconds, so one that has for :data:`FROZEN_WRITER_S` (or the idle
        timeout, if shorter) is frozen. Ending its connection rolls its append back; should
        it wake up, it retries, and its fence decides.
        """
        after = min(self._idle_s, FROZEN_WRITER_S)
        try:
            cursor = await self._conn.execute(_FROZEN_WRITERS, (after,))
        except psycopg.errors.InsufficientPrivilege as exc:
            # Another role's writer: only the server's idle timeout can end it; wait for that.
            logger.warning("%s: cannot end a frozen append: %s", self._where, exc)
            return
        for pid, _ in await cursor.fetchall():
            logger.warning("%s: ended the frozen append of backend %s", self._where, pid)

    async def _newest(self) -> tuple[int, bytes]:
        cursor = await self._conn.execute(_HEAD)
        row = await cursor.fetchone()
        if row is None:
            return 0, GENESIS
        position, digest = row
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise CorruptStoreError(
                f"{self._where}: the newest event (position {position}) has no valid chain "
                "hash, so nothing can be chained after it; run a store check"
            )
        return int(position), digest

    async def _duplicate_ids(self, events: list[NewEvent]) -> StoreError:
        ids = [new.event_id for new in events]
        cursor = await self._conn.execute(
            "SELECT event_id FROM events WHERE event_id = ANY(%s)", (ids,)
        )
        found = sorted(str(row[0]) for row in await cursor.fetchall())
        return StoreError(f"event ids already stored, nothing appended: {found!r}")

    async def _update_lease(
        self,
        session_id: str,
        decide: Callable[[Lease | None, float], Lease | None],
        now: float | None,
    ) -> Lease | None:
        while True:
            try:
                return await self._update_lease_once(session_id, decide, now)
            except psycopg.errors.LockNotAvailable:
                await self._end_frozen_writers()  # an append froze holding the lease row

    async def _update_lease_once(
        self,
        session_id: str,
        decide: Callable[[Lease | None, float], Lease | None],
        now: float | None,
    ) -> Lease | None:
        conn = self._conn
        async with conn.transaction():
            await conn.execute(_BOUND_LOCK_WAIT)
            cursor = await conn.execute(_SERVER_NOW, (now,))
            row = await cursor.fetchone()
            assert row is not None
            await conn.execute(_LEASE_PLACEHOLDER, (session_id,))
            new = decide(await self._lease(_LOCK_LEASE, session_id), float(row[0]))
            if new is not None:
                await conn.execute(_PUT_LEASE, (*lease_row(new)[1:], session_id))
        return new

    async def _lease(self, sql: str, session_id: str) -> Lease | None:
        cursor = await self._conn.execute(sql, (session_id,))
        row = await cursor.fetchone()
        return None if row is None else _live_row(row)

    async def _select(self, sql: str, params: tuple[object, ...]) -> list[RecordedEvent]:
        return decode_rows(await self._raw(sql, params))

    async def _raw(self, sql: str, params: tuple[object, ...]) -> list[StoredRow]:
        cursor = await self._conn.execute(sql, params)
        return list(await cursor.fetchall())

    async def _scalar(self, sql: str) -> int:
        cursor = await self._conn.execute(sql)
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    # -- schema ------------------------------------------------------------------------------

    async def _open_schema(self) -> None:
        found = await self._version()
        while found < LATEST:
            found = await self._migrate_one()
        for columns, table in ((INSERT_COLUMNS, "events"), (LEASE_COLUMNS, "leases")):
            try:
                await self._conn.execute(f"SELECT {columns} FROM {table} LIMIT 0")
            except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable) as exc:
                raise CorruptStoreError(
                    f"{self._where} has the wrong table layout: {exc}"
                ) from None

    async def _migrate_one(self) -> int:
        """Apply the next pending migration in one transaction; return the version reached."""
        conn = self._conn
        async with conn.transaction():
            # Serializes concurrent first opens of one schema; the loser re-reads the version.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._schema,))
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            steps = pending(await self._version())
            if not steps:
                return LATEST
            step = steps[0]
            for statement in step.postgres:
                await conn.execute(statement.encode())
            if step.backfills_chain:
                await self._backfill_chain()
            await self._set_version(step.version)
        return step.version

    async def _tables(self) -> set[str]:
        names = (VERSION_TABLE, ALEMBIC_TABLE, "events")
        cursor = await self._conn.execute(
            "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(%s || '.' || t) IS NOT NULL",
            (list(names), self._schema),
        )
        return {str(row[0]) for row in await cursor.fetchall()}

    async def _version(self) -> int:
        tables = await self._tables()
        version = alembic = None
        if VERSION_TABLE in tables:
            cursor = await self._conn.execute(f"SELECT version FROM {VERSION_TABLE}")
            row = await cursor.fetchone()
            version = None if row is None else int(row[0])
        if ALEMBIC_TABLE in tables:
            cursor = await self._conn.execute(f"SELECT version_num FROM {ALEMBIC_TABLE}")
            row = await cursor.fetchone()
            alembic = None if row is None else str(row[0])
        return version_found(
            version=version,
            alembic_revision=alembic,
            has_events="events" in tables,
            where=self._where,
        )

    async def _set_version(self, version: int) -> None:
        tables = await self._tables()
        conn = self._conn
        if ALEMBIC_TABLE in tables:
            await conn.execute(f"DROP TABLE {ALEMBIC_TABLE}")
        if VERSION_TABLE in tables:
            await conn.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (version,))
        else:
            await conn.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
            await conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s)", (version,))

    async def _backfill_chain(self) -> None:
        previous, after = GENESIS, 0
        columns = INSERT_COLUMNS.removesuffix(", hash")
        while True:
            cursor = await self._conn.execute(
                f"SELECT {columns} FROM events WHERE position > %s ORDER BY position LIMIT %s",
                (after, _BACKFILL_PAGE),
            )
            rows = await cursor.fetchall()
            if not rows:
                return
            updates, previous = chain_backfill(rows, previous)
            await self._conn.execute(
                "UPDATE events AS e SET hash = v.h FROM unnest(%s::bytea[], %s::bigint[]) "
                "AS v(h, p) WHERE e.position = v.p",
                ([h for h, _ in updates], [p for _, p in updates]),
            )
            after = int(rows[-1][0])


class _LockWait(Exception):
    """A lock wait of ours reached ``lock_timeout`` (the transaction was rolled back)."""


class _RolledBack(Exception):
    """The connection broke inside an append's transaction before it committed."""


def _ended_idle(exc: BaseException) -> bool:
    """Whether the server ended the connection for idling in a transaction (rolled back)."""
    return isinstance(exc, psycopg.errors.IdleInTransactionSessionTimeout)


async def _connect(url: str, options: str) -> _Conn:
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, options=options)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to Postgres at {redact_url(url)!r}: {exc}") from None


def _live_row(row: Sequence[object]) -> Lease | None:
    """The lease of a ``leases`` row; ``None`` for a never-acquired placeholder (epoch 0)."""
    lease = lease_from_row(row)
    return None if lease.epoch == 0 else lease
