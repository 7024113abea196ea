"""Opening a SQLite store file safely, and the head file that outlives a lost WAL.

How this works and why:

* **A new store appears whole.** Where no file exists, the store is built in a temporary file
  next to it (schema migrated, WAL mode set, closed so the WAL is folded in) and then
  hard-linked into place, which fails if another process got there first (its file is then
  opened instead). So a store file never exists half-made, and an existing file that is
  empty (0 bytes) or holds no tables is never mistaken for a new store: it is refused.
* **Nothing is written to a file until it is known to be ours.** An existing file must have
  the SQLite header, and its tables must all be Loomkin's, including a schema version, before
  the store switches it to WAL mode or migrates it. A foreign database (other tables) or a
  non-SQLite file is refused unchanged.
* **The head file.** ``<db>-head`` holds the position and chain hash of the newest event this
  process saw committed, rewritten in place (52 bytes, one ``write``, no fsync) after every
  commit.
  It exists because nothing *inside* the database can notice a lost WAL: with
  ``journal_mode=WAL`` every commit, including any bookkeeping row, lives only in ``-wal``
  until a checkpoint copies it into the main file, so deleting or damaging the WAL rolls the
  whole database back to an older state that is perfectly consistent (gapless, chain intact).
  Opening compares the head file with the database: if the recorded position is missing, or
  holds another hash, the open fails with :class:`~loomkin.errors.CorruptStoreError` naming
  both (``check()`` reports the same). The head file can only lag the database (several
  processes may write it, each after its own commit), never lead it, so it gives no false
  alarm; after a power loss with ``synchronous=NORMAL`` it may report commits the OS never
  wrote, which is exactly the loss it exists to report.

What is detected on open: a WAL deleted or truncated after commits that were not yet
checkpointed (with or without its ``-shm``), a WAL whose frames were damaged (SQLite stops
recovery at the first bad checksum, dropping later commits), the database file replaced by an
older copy of itself or by another store's file, an empty file, a non-SQLite file, a foreign
database, a truncated file. What ``check()`` adds: any changed, removed or reordered row (the
chain), undecodable rows, and damaged pages (``PRAGMA quick_check``). What is *not* detected:
a lost WAL when the head file was deleted with it (or never written: a store last written by
a Loomkin before the head file existed); a WAL lost when every commit in it was already
checkpointed (nothing is lost then); damage inside the head file itself is reported, but not
repaired.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import uuid
import zlib
from typing import TYPE_CHECKING

from loomkin.errors import ConfigError, CorruptStoreError, StoreError
from loomkin.persistence._chain import GENESIS
from loomkin.persistence._leases import LEASE_COLUMNS
from loomkin.persistence._migrations import (
    ALEMBIC_TABLE,
    KNOWN_TABLES,
    LATEST,
    VERSION_TABLE,
    chain_backfill,
    pending,
    version_found,
)
from loomkin.persistence._rows import INSERT_COLUMNS

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["HeadFile", "connect_store", "head_problem", "sqlite_error"]

_HEADER = b"SQLite format 3\x00"
_TIMEOUT_S = 10.0
"""How long a statement waits for another connection's write lock (SQLite busy timeout)."""
_BACKFILL_PAGE = 1000


def sqlite_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """Translate a ``sqlite3`` error into the store error that names ``path``."""
    if type(exc) is sqlite3.DatabaseError:  # SQLITE_CORRUPT / SQLITE_NOTADB, not lock or I/O
        return CorruptStoreError(f"SQLite store {str(path)!r} is damaged: {exc}")
    return StoreError(f"SQLite store {str(path)!r}: {exc}")


class HeadFile:
    """``<db>-head``: the newest acknowledged position and chain hash (see the module doc)."""

    _RECORD = struct.Struct(">8sQ32sI")
    _MAGIC = b"LKHEAD01"

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + "-head")
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self._fd = os.open(self.path, flags, 0o644)

    @classmethod
    def reset(cls, db: Path) -> None:
        """Record an empty log for a store file being created (a leftover head is stale)."""
        head = cls(db)
        try:
            head.write(0, GENESIS)
        finally:
            head.close()

    def read(self) -> tuple[int, bytes] | None:
        """Return the recorded ``(position, hash)``, or ``None`` when nothing was recorded.

        Raises:
            CorruptStoreError: the file holds something that is not a head record.
        """
        # lseek + read rather than pread, which Windows lacks; only the store's worker thread
        # uses this descriptor, so the offset cannot move in between.
        os.lseek(self._fd, 0, os.SEEK_SET)
        data = os.read(self._fd, self._RECORD.size)
        if not data:
            return None
        if len(data) == self._RECORD.size:
            magic, position, digest, crc = self._RECORD.unpack(data)
            if magic == self._MAGIC and crc == zlib.crc32(data[:-4]):
                return position, digest
        raise CorruptStoreError(
            f"the head file {str(self.path)!r} of the SQLite store is damaged; delete it to "
            "open the store without comparing its newest event with the last one acknowledged"
        )

    def write(self, position: int, digest: bytes) -> None:
        """Record ``(position, digest)`` as the newest acknowledged event."""
        body = self._RECORD.pack(self._MAGIC, position, digest, 0)[:-4]
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, body + struct.pack(">I", zlib.crc32(body)))

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def head_problem(
    conn: sqlite3.Connection, recorded: tuple[int, bytes] | None, head: HeadFile
) -> tuple[int, str] | None:
    """Compare the database with the head file's record (read *before* calling this).

    Returns:
        ``(position, why)`` when an acknowledged event is missing or differs, else ``None``.
    """
    if recorded is None or recorded[0] == 0:
        return None
    position, digest = recorded
    row = conn.execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchone()
    if row is None:
        (last,) = conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
        return last + 1, (
            f"the log ends at position {last}, but position {position} was acknowledged "
            f"(recorded in {str(head.path)!r}): the write-ahead log ('-wal') holding the "
            "newer commits was lost or damaged, or the file was replaced by an older copy. "
            f"If you restored an older copy on purpose, delete {str(head.path)!r} to accept "
            "the loss"
        )
    if row[0] is None or bytes(row[0]) != digest:
        return position, (
            f"the event at position {position} is not the one acknowledged there (its chain "
            f"hash differs from the one recorded in {str(head.path)!r}): the file was replaced "
            "by another store's, or its history was rewritten"
        )
    return None


def connect_store(file: Path) -> sqlite3.Connection:
    """Create or check the store file, connect, and migrate it (worker thread; no WAL yet).

    Raises:
        ConfigError: ``file`` is a folder or its folder cannot be created.
        CorruptStoreError: the file is empty, not SQLite, truncated, foreign, or badly laid out.
        SchemaVersionError: the file was written by a newer Loomkin.
    """
    if file.is_dir():
        raise ConfigError(f"SQLite store path {str(file)!r} is a folder, not a file")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the folder of SQLite store {str(file)!r}: {exc}"
        ) from None
    if not file.exists():
        _create(file)
    _check_file(file)
    conn = _connect(file)
    try:
        where = f"SQLite store {str(file)!r}"
        found = _version(conn, file, where=where)  # refuses a foreign file, writes nothing
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise StoreError(f"{where}: cannot use WAL mode (got {mode!r})")
        if found < LATEST:
            _migrate(conn, file, where=where)
        _check_layout(conn, file)
    except sqlite3.Error as exc:
        conn.close()
        raise sqlite_error(file, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(file: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(file, isolation_level=None, timeout=_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise sqlite_error(file, exc) from exc


def _create(file: Path) -> None:
    """Build a new, migrated store beside ``file`` and link it into place (see module doc)."""
    temporary = file.with_name(f".{file.name}.new-{uuid.uuid4().hex[:12]}")
    try:
        conn = _connect(temporary)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            _migrate(conn, temporary, where=f"new SQLite store {str(file)!r}")
        except sqlite3.Error as exc:
            raise sqlite_error(file, exc) from exc
        finally:
            conn.close()  # the last connection folds the WAL in and deletes it
        if _link(temporary, file):
            # A head file left by a deleted store would name events this new one lacks.
            HeadFile.reset(file)
    finally:
        for leftover in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{temporary}{leftover}")


def _link(temporary: Path, file: Path) -> bool:
    """Put ``temporary`` in place as ``file``; ``False`` if another process made ``file`` first."""
    try:
        os.link(temporary, file)
    except FileExistsError:
        return False
    except OSError:
        # A file system without hard links: a rename cannot refuse an existing target, so a
        # creator racing us in this very instant may be replaced (it then opens ours).
        if file.exists():
            return False
        os.replace(temporary, file)
    return True


def _check_file(file: Path) -> None:
    """Refuse an empty, non-SQLite or truncated file by its bytes, before SQLite opens it."""
    size = file.stat().st_size
    wal_frames = _wal_has_frames(file)
    if size == 0:
        also = " (its '-wal' file is not empty)" if wal_frames else ""
        raise CorruptStoreError(
            f"empty store file {str(file)!r}: it has 0 bytes{also}, so it is not a Loomkin "
            "store (a new store is created only where no file exists); delete it to start a "
            "new store there"
        )
    with file.open("rb") as handle:
        header = handle.read(100)
    problem = _header_problem(header, size, wal_frames)
    if problem:
        raise CorruptStoreError(f"SQLite store {str(file)!r} is damaged: {problem}")


def _header_problem(header: bytes, size: int, wal_has_frames: bool) -> str | None:
    """Describe what is wrong with a (non-empty) database file header, or return ``None``."""
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


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%'"
    )
    return {str(name) for (name,) in rows}


def _version(conn: sqlite3.Connection, file: Path, *, where: str) -> int:
    """Read the schema version of an existing file, refusing anything not a Loomkin store."""
    tables = _tables(conn)
    if not tables:
        raise CorruptStoreError(
            f"SQLite file {str(file)!r} is an empty database (no tables), not a Loomkin store; "
            "delete it to start a new store there"
        )
    foreign = sorted(tables - KNOWN_TABLES)
    if foreign:
        raise CorruptStoreError(
            f"SQLite file {str(file)!r} has tables {foreign!r} that a Loomkin store does not "
            "have; it is not a Loomkin store (left unchanged)"
        )
    found = _version_in(conn, tables, where=where)
    if found == 0:
        raise CorruptStoreError(
            f"SQLite file {str(file)!r} has tables {sorted(tables)!r} but no Loomkin schema "
            "version; it is not a Loomkin store (left unchanged)"
        )
    return found


def _version_in(conn: sqlite3.Connection, tables: set[str], *, where: str) -> int:
    version = alembic = None
    if VERSION_TABLE in tables:
        row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        version = None if row is None else int(row[0])
    if ALEMBIC_TABLE in tables:
        row = conn.execute(f"SELECT version_num FROM {ALEMBIC_TABLE}").fetchone()
        alembic = None if row is None else str(row[0])
    return version_found(
        version=version, alembic_revision=alembic, has_events="events" in tables, where=where
    )


def _migrate(conn: sqlite3.Connection, file: Path, *, where: str) -> None:
    """Apply every pending migration, each in one ``BEGIN IMMEDIATE`` transaction."""
    while True:
        conn.execute("BEGIN IMMEDIATE")  # the write lock: a concurrent opener waits here
        try:
            tables = _tables(conn)
            steps = pending(_version_in(conn, tables, where=where))
            if not steps:
                conn.execute("COMMIT")
                return
            step = steps[0]
            for statement in step.sqlite:
                conn.execute(statement)
            if step.backfills_chain:
                _backfill_chain(conn)
            _set_version(conn, tables, step.version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _set_version(conn: sqlite3.Connection, tables: set[str], version: int) -> None:
    if ALEMBIC_TABLE in tables:
        conn.execute(f"DROP TABLE {ALEMBIC_TABLE}")
    if VERSION_TABLE in tables:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version = ?", (version,))
    else:
        conn.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)", (version,))


def _backfill_chain(conn: sqlite3.Connection) -> None:
    previous, after = GENESIS, 0
    while True:
        rows = conn.execute(
            f"SELECT {INSERT_COLUMNS.removesuffix(', hash')} FROM events WHERE position > ? "
            "ORDER BY position LIMIT ?",
            (after, _BACKFILL_PAGE),
        ).fetchall()
        if not rows:
            return
        updates, previous = chain_backfill(rows, previous)
        conn.executemany("UPDATE events SET hash = ? WHERE position = ?", updates)
        after = rows[-1][0]


def _check_layout(conn: sqlite3.Connection, file: Path) -> None:
    try:
        conn.execute(f"SELECT {INSERT_COLUMNS} FROM events LIMIT 0")
        conn.execute(f"SELECT {LEASE_COLUMNS} FROM leases LIMIT 0")
    except sqlite3.OperationalError as exc:
        raise CorruptStoreError(
            f"SQLite store {str(file)!r} has the wrong table layout: {exc}"
        ) from None
