"""SQLite event store: the default backend, one file per project (``.loomkin/loomkin.db``).

How this works and why:

* **One worker thread.** Every ``sqlite3`` call runs in a single-thread executor owned by the
  store, so the event loop never blocks on disk and the connection is only ever used by the
  thread that created it. Calls queue in FIFO order, which also orders appends.
* **WAL with ``synchronous=NORMAL``.** A commit appends to the write-ahead log without an
  fsync. That is durable against a *process* kill (``kill -9``): the log already sits in the
  operating system's page cache and SQLite recovers it on the next open. It is not durable
  against a power loss or kernel crash, which may drop the last commits (never corrupt the
  file). Pass ``synchronous="FULL"`` to fsync on every commit when that matters.
* **Lean appends.** A batch is one ``BEGIN IMMEDIATE`` … ``COMMIT`` with one ``executemany``;
  positions and stream versions are computed inside that write transaction (``MAX(position)``
  is a single rowid seek), so they stay gapless even if another process writes the same file.
  No SQLAlchemy on this path; Alembic runs only when the schema must be migrated.
* **Damage is named, not propagated.** Opening checks the file header (magic string, page size,
  truncation); any later ``sqlite3.DatabaseError`` that means a damaged file becomes
  :class:`~loomkin.errors.CorruptStoreError` naming the path. A single undecodable row raises
  :class:`~loomkin.errors.EventDecodeError` naming its position; every other row still reads.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal, ParamSpec, Self, TypeVar

from loomkin.errors import ConfigError, CorruptStoreError, StoreError
from loomkin.persistence import _schema
from loomkin.persistence._rows import COLUMNS, check_expected, decode_rows, plan_batch
from loomkin.persistence.migrations import VERSION_TABLE

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from os import PathLike
    from types import TracebackType

    from loomkin.core.events import NewEvent, RecordedEvent

__all__ = ["SqliteStore", "Synchronous"]

Synchronous = Literal["NORMAL", "FULL"]
"""SQLite ``synchronous`` level: ``NORMAL`` survives a process kill, ``FULL`` a power loss."""

_P = ParamSpec("_P")
_T = TypeVar("_T")
_HEADER = b"SQLite format 3\x00"
_INSERT = f"INSERT INTO events ({COLUMNS}, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_READ = f"SELECT {COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
_READ_SESSION = (
    f"SELECT {COLUMNS} FROM events WHERE session_id = ? AND position > ? ORDER BY position LIMIT ?"
)
_READ_STREAM = (
    f"SELECT {COLUMNS} FROM events WHERE stream = ? AND stream_version > ? ORDER BY stream_version"
)
_STREAM_VERSION = "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?"
_LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM events"


class SqliteStore:
    """An :class:`~loomkin.core.store.EventStore` in one SQLite file.

    Create it with :meth:`open` (which migrates the schema); use it as an async context
    manager or call :meth:`close`.
    """

    def __init__(self, path: Path, executor: ThreadPoolExecutor, conn: sqlite3.Connection):
        self._path = path
        self._executor = executor
        self._conn = conn
        self._closed = False

    @classmethod
    async def open(
        cls, path: str | PathLike[str], *, synchronous: Synchronous = "NORMAL"
    ) -> SqliteStore:
        """Open (creating and migrating if needed) the store in the file ``path``.

        Args:
            path: the database file; missing parent folders are created.
            synchronous: ``"NORMAL"`` (durable against a process kill, fast) or ``"FULL"``
                (also durable against a power loss; an fsync per commit).

        Raises:
            ConfigError: ``path`` is a folder or cannot be created.
            CorruptStoreError: the file is not a SQLite database, is truncated or has tables
                that are not a Loomkin store.
            SchemaVersionError: the file was written by a newer Loomkin.
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigError(f"SQLite synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loomkin-sqlite")
        try:
            file, conn = await asyncio.get_running_loop().run_in_executor(
                executor, _open_connection, Path(path), synchronous
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(file, executor, conn)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

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
        return await self._run(self._append, list(events), expected_versions)

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

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        finally:
            # The worker is idle once the close job ran, so this join is immediate.
            self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self._closed:
            raise StoreError(f"the SQLite store {str(self._path)!r} is closed")
        call = functools.partial(self._translated, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _translated(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as exc:
            raise _store_error(self._path, exc) from exc

    # Everything below runs in the worker thread.

    def _append(
        self, events: list[NewEvent], expected: Mapping[str, int] | None
    ) -> list[RecordedEvent]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            (last,) = conn.execute(_LAST_POSITION).fetchone()
            streams = {new.event.stream() for new in events} | set(expected or ())
            current = {s: conn.execute(_STREAM_VERSION, (s,)).fetchone()[0] for s in streams}
            check_expected(current, expected)
            batch = plan_batch(events, last_position=last, stream_versions=current)
            conn.executemany(_INSERT, batch.rows)
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            raise self._duplicate_ids(events) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return batch.recorded

    def _duplicate_ids(self, events: list[NewEvent]) -> StoreError:
        ids = [new.event_id for new in events]
        marks = ", ".join("?" * len(ids))
        rows = self._conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", ids)
        found = sorted(str(row[0]) for row in rows)
        return StoreError(f"event ids already stored, nothing appended: {found!r}")

    def _select(self, sql: str, params: tuple[object, ...]) -> list[RecordedEvent]:
        return decode_rows(self._conn.execute(sql, params).fetchall())

    def _scalar(self, sql: str, params: tuple[object, ...]) -> int:
        (value,) = self._conn.execute(sql, params).fetchone()
        assert isinstance(value, int)
        return value


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    if type(exc) is sqlite3.DatabaseError:  # SQLITE_CORRUPT / SQLITE_NOTADB, not lock or I/O
        return CorruptStoreError(f"SQLite store {str(path)!r} is damaged: {exc}")
    return StoreError(f"SQLite store {str(path)!r}: {exc}")


def _open_connection(path: Path, synchronous: Synchronous) -> tuple[Path, sqlite3.Connection]:
    """Check the file, connect, migrate if needed and verify the layout (worker thread)."""
    file = path.absolute()
    _prepare_file(file)
    where = f"SQLite store {str(file)!r}"
    try:
        conn = sqlite3.connect(file, isolation_level=None, timeout=10.0)
    except sqlite3.Error as exc:
        raise _store_error(file, exc) from exc
    try:
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise StoreError(f"{where}: cannot use WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if _schema.needs_upgrade(_read_version(conn, file), where=where):
            _schema.upgrade("sqlite://", functools.partial(_migration_connection, file))
            _schema.needs_upgrade(_read_version(conn, file), where=where)
        _check_layout(conn, file)
    except sqlite3.Error as exc:
        conn.close()
        raise _store_error(file, exc) from exc
    except BaseException:
        conn.close()
        raise
    return file, conn


def _migration_connection(file: Path) -> sqlite3.Connection:
    # Autocommit, so env.py's ``BEGIN IMMEDIATE`` opens the one migration transaction.
    return sqlite3.connect(file, isolation_level=None, timeout=10.0)


def _prepare_file(file: Path) -> None:
    """Refuse folders, create the parent, and check an existing file's header for damage."""
    if file.is_dir():
        raise ConfigError(f"SQLite store path {str(file)!r} is a folder, not a file")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the folder of SQLite store {str(file)!r}: {exc}"
        ) from None
    if not file.exists():
        return
    with file.open("rb") as handle:
        header = handle.read(100)
    size = file.stat().st_size
    problem = _header_problem(header, size, _wal_has_frames(file))
    if problem:
        raise CorruptStoreError(f"SQLite store {str(file)!r} is damaged: {problem}")


def _header_problem(header: bytes, size: int, wal_has_frames: bool) -> str | None:
    """Describe what is wrong with a database file header, or return ``None``."""
    if size == 0:
        return None  # SQLite treats an empty file as a new, empty database
    if len(header) < len(_HEADER) and _HEADER.startswith(header):
        return f"truncated to {size} bytes, shorter than the SQLite header"
    if not header.startswith(_HEADER):
        return "not a SQLite database (the file does not start with 'SQLite format 3')"
    if len(header) < 100:
        return f"truncated to {size} bytes, shorter than the 100-byte SQLite header"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"the header names an invalid page size {page_size}"
    if size % page_size:
        return f"truncated: {size} bytes is not a whole number of {page_size}-byte pages"
    pages = int.from_bytes(header[28:32], "big")
    header_size_valid = header[24:28] == header[92:96]
    # With frames in the WAL the main file may legitimately lag its own header until recovery.
    if header_size_valid and not wal_has_frames and pages * page_size > size:
        held = size // page_size
        return f"truncated: the header counts {pages} pages but the file holds {held}"
    return None


def _wal_has_frames(file: Path) -> bool:
    wal = file.with_name(file.name + "-wal")
    try:
        return wal.stat().st_size > 32  # the WAL header alone is 32 bytes
    except FileNotFoundError:
        return False


def _read_version(conn: sqlite3.Connection, file: Path) -> str | None:
    tables = {
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if VERSION_TABLE in tables:
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        return None if row is None else str(row[0])
    if tables:
        raise CorruptStoreError(
            f"SQLite store {str(file)!r} has tables {sorted(tables)!r} but no Loomkin schema "
            "version; it is not a Loomkin store"
        )
    return None


def _check_layout(conn: sqlite3.Connection, file: Path) -> None:
    try:
        conn.execute(f"SELECT {COLUMNS}, session_id FROM events LIMIT 0")
    except sqlite3.OperationalError as exc:
        raise CorruptStoreError(
            f"SQLite store {str(file)!r} has the wrong table layout: {exc}"
        ) from None
