"""SQLite event store: the default backend, one file per project (``.loomkin/loomkin.db``).

How this works and why:

* **One worker thread.** Every ``sqlite3`` call runs in a single-thread executor owned by the
  store, so the event loop never blocks on disk and the connection is only ever used by the
  thread that created it. Calls queue in FIFO order, which also orders appends.
* **WAL with ``synchronous=NORMAL``.** A commit appends to the write-ahead log without an
  fsync. That is durable against a *process* kill (``kill -9``): the log already sits in the
  operating system's page cache and SQLite recovers it on the next open. It is not durable
  against a power loss or kernel crash, which may drop the last commits (never corrupt the
  file; the head file then reports the loss). Pass ``synchronous="FULL"`` to fsync on every
  commit when that matters.
* **One transaction per append.** A batch is one ``BEGIN IMMEDIATE`` … ``COMMIT``: inside the
  write lock it checks the fences against ``leases``, reads the newest row's position and
  hash (a single rowid seek), numbers and chains the batch, and inserts it with one
  ``executemany``. Positions stay gapless and fences exact even if other processes write the
  same file, and a failure at any row rolls the whole batch back.
* **Leases** are rows of ``leases``, read and written inside ``BEGIN IMMEDIATE`` so two
  processes acquiring at once are serialized; time is the store's clock (a ``LoopClock``
  by default) or the ``now`` passed.
* **Opening and damage** (``_sqlite_file.py``): a new file appears whole; an empty, foreign
  or non-SQLite file is refused before anything is written to it; the head file beside the
  database catches a lost or damaged WAL. Any later ``sqlite3.DatabaseError`` that means a
  damaged file becomes :class:`~loomkin.errors.CorruptStoreError` naming the path. A single
  undecodable row raises :class:`~loomkin.errors.EventDecodeError` naming its position.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal, ParamSpec, Self, TypeVar

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
from loomkin.persistence._rows import (
    COLUMNS,
    INSERT_COLUMNS,
    check_expected,
    decode_rows,
    plan_batch,
)
from loomkin.persistence._sqlite_file import HeadFile, connect_store, head_problem, sqlite_error
from loomkin.runtime.clock import LoopClock

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from os import PathLike
    from types import TracebackType

    from loomkin.core.events import NewEvent, RecordedEvent
    from loomkin.core.store import CheckReport, Fence, Lease
    from loomkin.ids import SessionId
    from loomkin.persistence._rows import StoredRow
    from loomkin.runtime.clock import Clock

__all__ = ["SqliteStore", "Synchronous"]

logger = logging.getLogger(__name__)

Synchronous = Literal["NORMAL", "FULL"]
"""SQLite ``synchronous`` level: ``NORMAL`` survives a process kill, ``FULL`` a power loss."""

_P = ParamSpec("_P")
_T = TypeVar("_T")
_INSERT = f"INSERT INTO events ({INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_READ = f"SELECT {COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
_READ_SESSION = (
    f"SELECT {COLUMNS} FROM events WHERE session_id = ? AND position > ? ORDER BY position LIMIT ?"
)
_READ_STREAM = (
    f"SELECT {COLUMNS} FROM events WHERE stream = ? AND stream_version > ? ORDER BY stream_version"
)
_READ_CHAIN = f"SELECT {CHAIN_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
_STREAM_VERSION = "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?"
_LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM events"
_HEAD = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"
_LEASE = f"SELECT {LEASE_COLUMNS} FROM leases WHERE session_id = ?"
_PUT_LEASE = f"INSERT OR REPLACE INTO leases ({LEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


class SqliteStore:
    """A :class:`~loomkin.core.store.Store` in one SQLite file.

    Create it with :meth:`open` (which creates or migrates the file); use it as an async
    context manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: Path,
        executor: ThreadPoolExecutor,
        conn: sqlite3.Connection,
        head: HeadFile,
        *,
        clock: Clock,
    ):
        self._path = path
        self._executor = executor
        self._conn = conn
        self._head = head
        self._clock = clock
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        clock: Clock | None = None,
        verify_head: bool = True,
    ) -> SqliteStore:
        """Open the store in the file ``path``, creating it only if no file exists there.

        Args:
            path: the database file; missing parent folders are created.
            synchronous: ``"NORMAL"`` (durable against a process kill, fast) or ``"FULL"``
                (also durable against a power loss; an fsync per commit).
            clock: the time source for leases (default: a ``LoopClock``).
            verify_head: refuse a file whose newest acknowledged event is missing (a lost
                WAL); ``False`` opens it anyway so that :meth:`check` can report it.

        Raises:
            ConfigError: ``path`` is a folder or cannot be created.
            CorruptStoreError: the file is empty, not a SQLite database, truncated, has tables
                that are not a Loomkin store's, or lost acknowledged events.
            SchemaVersionError: the file was written by a newer Loomkin.
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigError(f"SQLite synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loomkin-sqlite")
        try:
            file, conn, head = await asyncio.get_running_loop().run_in_executor(
                executor, _open, Path(path), synchronous, verify_head
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(file, executor, conn, head, clock=clock if clock is not None else LoopClock())

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def head_path(self) -> Path:
        """The head file beside the database (see ``_sqlite_file.py``)."""
        return self._head.path

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
        return await self._run(self._append, list(events), expected_versions, list(fences))

    async def read(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        session_id: str | None = None,
    ) -> list[RecordedEvent]:
        sql_limit = -1 if limit is None else max(limit, 0)
        if session_id is None:
            return await self._run(self._select, _READ, (after, sql_limit))
        return await self._run(self._select, _READ_SESSION, (session_id, after, sql_limit))

    async def read_stream(self, stream: str, after: int = 0) -> list[RecordedEvent]:
        return await self._run(self._select, _READ_STREAM, (stream, after))

    async def last_position(self) -> int:
        return await self._run(self._scalar, _LAST_POSITION, ())

    async def check(self) -> CheckReport:
        async def fetch(after: int, limit: int) -> list[StoredRow]:
            return await self._run(self._raw, _READ_CHAIN, (after, limit))

        walked, problem = await walk_log(fetch)
        if problem is not None:
            return walked.report(*problem)
        damage = await self._run(self._quick_check)
        if damage is not None:
            return walked.report(None, damage)
        lost = await self._run(self._head_problem)
        if lost is not None:
            return walked.report(*lost)
        return walked.report()

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
        at = self._now(now)

        def decide(current: Lease | None) -> Lease:
            return acquired(
                current, session_id, holder,
                ttl_s=ttl_s, host=host, pid=pid, take_over=take_over, now=at,
            )  # fmt: skip

        lease = await self._run(self._update_lease, session_id, decide)
        assert lease is not None
        return lease

    async def renew_lease(
        self, lease: Lease, *, ttl_s: float | None = None, now: float | None = None
    ) -> Lease:
        at = self._now(now)

        def decide(current: Lease | None) -> Lease:
            return renewed(current, lease, ttl_s=ttl_s, now=at)

        new = await self._run(self._update_lease, lease.session_id, decide)
        assert new is not None
        return new

    async def release_lease(self, lease: Lease, *, now: float | None = None) -> bool:
        at = self._now(now)

        def decide(current: Lease | None) -> Lease | None:
            return released(current, lease, now=at)

        return await self._run(self._update_lease, lease.session_id, decide) is not None

    async def current_lease(self, session_id: SessionId) -> Lease | None:
        return await self._run(self._lease, session_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_files)
        finally:
            # The worker is idle once the close job ran, so this join is immediate.
            self._executor.shutdown(wait=True)

    def _now(self, now: float | None) -> float:
        return float(self._clock.now() if now is None else now)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the SQLite store {str(self._path)!r} is closed")

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        self._check_open()
        call = functools.partial(self._translated, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _translated(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as exc:
            raise sqlite_error(self._path, exc) from exc

    # Everything below runs in the worker thread.

    def _write(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction; roll back if it raises."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _append(
        self,
        events: list[NewEvent],
        expected: Mapping[str, int] | None,
        fences: list[Fence],
    ) -> list[RecordedEvent]:
        conn = self._conn

        def insert() -> tuple[int, bytes] | None:
            if fences:
                check_fences(fences, self._leases({f.session_id for f in fences}))
            last, last_hash = self._newest()
            streams = {new.event.stream() for new in events} | set(expected or ())
            current = {s: conn.execute(_STREAM_VERSION, (s,)).fetchone()[0] for s in streams}
            check_expected(current, expected)
            planned = plan_batch(
                events, last_position=last, last_hash=last_hash, stream_versions=current
            )
            conn.executemany(_INSERT, planned.rows)
            recorded.extend(planned.recorded)
            return planned.head

        recorded: list[RecordedEvent] = []
        try:
            head = self._write(insert)
        except sqlite3.IntegrityError as exc:
            raise self._refused(events, exc) from None
        if head is None:
            return recorded
        try:
            self._head.write(*head)
        except OSError as exc:
            # The batch is committed: failing the append now would make the caller retry a
            # batch that is stored. A stale head file only weakens lost-WAL detection.
            logger.warning("could not record the head of %s: %s", self._path, exc)
        return recorded

    def _newest(self) -> tuple[int, bytes]:
        row = self._conn.execute(_HEAD).fetchone()
        if row is None:
            return 0, GENESIS
        position, digest = row
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise CorruptStoreError(
                f"SQLite store {str(self._path)!r}: the newest event (position {position}) has "
                "no valid chain hash, so nothing can be chained after it; run a store check"
            )
        return int(position), digest

    def _refused(self, events: list[NewEvent], exc: sqlite3.IntegrityError) -> StoreError:
        ids = [new.event_id for new in events]
        marks = ", ".join("?" * len(ids))
        rows = self._conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", ids)
        found = sorted(str(row[0]) for row in rows)
        if not found:  # not a duplicate id: another constraint (or a trigger) refused a row
            return StoreError(
                f"SQLite store {str(self._path)!r} refused a row ({exc}); nothing appended"
            )
        return StoreError(f"event ids already stored, nothing appended: {found!r}")

    def _leases(self, sessions: set[str]) -> dict[str, Lease]:
        found = {}
        for session_id in sessions:
            lease = self._lease(session_id)
            if lease is not None:
                found[session_id] = lease
        return found

    def _lease(self, session_id: str) -> Lease | None:
        row = self._conn.execute(_LEASE, (session_id,)).fetchone()
        return None if row is None else lease_from_row(row)

    def _update_lease(
        self, session_id: str, decide: Callable[[Lease | None], Lease | None]
    ) -> Lease | None:
        def update() -> Lease | None:
            new = decide(self._lease(session_id))
            if new is not None:
                self._conn.execute(_PUT_LEASE, lease_row(new))
            return new

        return self._write(update)

    def _select(self, sql: str, params: tuple[object, ...]) -> list[RecordedEvent]:
        return decode_rows(self._conn.execute(sql, params).fetchall())

    def _raw(self, sql: str, params: tuple[object, ...]) -> list[StoredRow]:
        return list(self._conn.execute(sql, params).fetchall())

    def _scalar(self, sql: str, params: tuple[object, ...]) -> int:
        (value,) = self._conn.execute(sql, params).fetchone()
        assert isinstance(value, int)
        return value

    def _quick_check(self) -> str | None:
        try:
            rows = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check(20)")]
        except sqlite3.DatabaseError as exc:
            return f"SQLite cannot check the file's structure: {exc}"
        if rows == ["ok"]:
            return None
        return "SQLite reports damaged pages: " + "; ".join(rows)

    def _head_problem(self) -> tuple[int, str] | None:
        recorded = self._head.read()  # before reading the database: the head may only lag it
        return head_problem(self._conn, recorded, self._head)

    def _close_files(self) -> None:
        try:
            self._conn.close()
        finally:
            self._head.close()


def _open(
    path: Path, synchronous: Synchronous, verify_head: bool
) -> tuple[Path, sqlite3.Connection, HeadFile]:
    """Open the file, set durability, and compare it with its head file (worker thread)."""
    file = path.absolute()
    conn = connect_store(file)
    head: HeadFile | None = None
    try:
        conn.execute(f"PRAGMA synchronous={synchronous}")
        head = HeadFile(file)
        recorded = head.read()
        problem = head_problem(conn, recorded, head)
        if problem is not None and verify_head:
            position, why = problem
            raise CorruptStoreError(
                f"SQLite store {str(file)!r} lost acknowledged events at position {position}: {why}"
            )
        if problem is None:
            newest = conn.execute(_HEAD).fetchone()
            head.write(*(newest if newest is not None and newest[1] else (0, GENESIS)))
    except sqlite3.Error as exc:
        _close_quietly(conn, head)
        raise sqlite_error(file, exc) from exc
    except BaseException:
        _close_quietly(conn, head)
        raise
    return file, conn, head


def _close_quietly(conn: sqlite3.Connection, head: HeadFile | None) -> None:
    conn.close()
    if head is not None:
        head.close()
