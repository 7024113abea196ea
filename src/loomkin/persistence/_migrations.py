"""The numbered schema migrations of the SQL stores, and the rules for applying them.

How this works and why (the decision is argued in ``persistence/AGENTS.md``):

* A migration is a number, a title, and the SQL statements for each backend. The database
  records the number of the last one applied in ``schema_version`` (one row). Opening a store
  reads it with the backend's own driver and applies the missing migrations in order, each in
  its own transaction together with the version bump, under the database's write lock (SQLite
  ``BEGIN IMMEDIATE``, Postgres an advisory lock on the schema) and after reading the version
  again inside that lock, so concurrent first opens migrate once. DDL is transactional on both
  backends, so a migration killed half-way leaves the previous version intact.
* A version higher than :data:`LATEST` (a database written by a newer Loomkin) is refused
  before anything is written.
* Stores created before this runner used Alembic, which kept its revision in
  ``alembic_version``. Alembic's revision ``"0001"`` created exactly the schema of migration 1
  here, so such a store continues from version 1: the first migration applied replaces
  ``alembic_version`` with ``schema_version`` in the same transaction.
* Migration 2 adds the hash chain; existing rows get their hashes computed here in Python
  (``backfills_chain``), in the same transaction, a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from loomkin.errors import CorruptStoreError, SchemaVersionError
from loomkin.persistence._chain import GENESIS, chain_hash

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "ALEMBIC_REVISIONS",
    "ALEMBIC_TABLE",
    "KNOWN_TABLES",
    "LATEST",
    "MIGRATIONS",
    "VERSION_TABLE",
    "Dialect",
    "Migration",
    "chain_backfill",
    "pending",
    "version_found",
]

Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One step of the schema, applied in one transaction."""

    version: int
    """The schema version once applied (1, 2, …; never reused or reordered)."""
    title: str
    """What it does, for messages."""
    sqlite: tuple[str, ...]
    """Statements for SQLite, run one by one (``executescript`` would commit first)."""
    postgres: tuple[str, ...]
    """Statements for PostgreSQL."""
    backfills_chain: bool = False
    """After the statements, compute the chain hash of every existing event."""

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        """The statements for ``dialect``."""
        return self.sqlite if dialect == "sqlite" else self.postgres


# Migration 1 is, column for column, what Alembic's revision "0001" created, so a store from
# before the runner continues from it. On SQLite ``position`` is exactly ``INTEGER`` so it
# aliases the rowid: no second index, and the newest row is a single seek.
_EVENTS = """CREATE TABLE events (
    position {position} NOT NULL,
    event_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    stream_version BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    recorded_at {double} NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (position),
    CONSTRAINT uq_events_event_id UNIQUE (event_id),
    CONSTRAINT uq_events_stream_version UNIQUE (stream, stream_version)
)"""
_SESSION_INDEX = "CREATE INDEX ix_events_session_position ON events (session_id, position)"
_LEASES = """CREATE TABLE leases (
    session_id TEXT NOT NULL PRIMARY KEY,
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    since {double} NOT NULL,
    expires_at {double} NOT NULL,
    ttl_s {double} NOT NULL,
    released {boolean} NOT NULL
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        title="the event log",
        sqlite=(_EVENTS.format(position="INTEGER", double="DOUBLE"), _SESSION_INDEX),
        postgres=(_EVENTS.format(position="BIGINT", double="DOUBLE PRECISION"), _SESSION_INDEX),
    ),
    Migration(
        version=2,
        title="hash chain and session leases",
        # Nullable because rows already stored get their hash from the backfill; a NULL left
        # behind (a row too damaged to hash) is what ``check`` then reports.
        sqlite=(
            "ALTER TABLE events ADD COLUMN hash BLOB",
            _LEASES.format(double="DOUBLE", boolean="INTEGER"),
        ),
        postgres=(
            "ALTER TABLE events ADD COLUMN hash BYTEA",
            _LEASES.format(double="DOUBLE PRECISION", boolean="BOOLEAN"),
        ),
        backfills_chain=True,
    ),
)
"""Every migration, in order; ``MIGRATIONS[i].version == i + 1``."""
LATEST: int = MIGRATIONS[-1].version
"""The schema version this code writes."""
VERSION_TABLE = "schema_version"
"""One row, one column ``version``: the last migration applied."""
ALEMBIC_TABLE = "alembic_version"
"""Where stores made before this runner kept their (Alembic) revision."""
ALEMBIC_REVISIONS: dict[str, int] = {"0001": 1}
"""Alembic revision → the schema version it equals."""
KNOWN_TABLES = frozenset({"events", "leases", VERSION_TABLE, ALEMBIC_TABLE})
"""Every table a Loomkin store may hold; any other table makes a SQLite file foreign."""


def version_found(
    *, version: int | None, alembic_revision: str | None, has_events: bool, where: str
) -> int:
    """Return the schema version of a database from what its version tables hold.

    Args:
        version: the ``schema_version`` row, ``None`` if the table is missing or empty.
        alembic_revision: the ``alembic_version`` row, ``None`` if missing or empty.
        has_events: whether an ``events`` table exists.
        where: the store, for messages.

    Raises:
        SchemaVersionError: the version is newer than this code knows, or is not a known
            Alembic revision.
        CorruptStoreError: an ``events`` table without any version (not a Loomkin store).
    """
    if version is not None:
        if version > LATEST:
            raise SchemaVersionError(
                f"{where} has schema version {version}, newer than this code knows (it reads up "
                f"to {LATEST}); upgrade Loomkin to open it"
            )
        return version
    if alembic_revision is not None:
        found = ALEMBIC_REVISIONS.get(alembic_revision)
        if found is None:
            raise SchemaVersionError(
                f"{where} has unknown (Alembic) schema version {alembic_revision!r}; this code "
                f"continues only from {sorted(ALEMBIC_REVISIONS)}"
            )
        return found
    if has_events:
        raise CorruptStoreError(f"{where} has an events table but no Loomkin schema version")
    return 0


def pending(found: int) -> tuple[Migration, ...]:
    """The migrations a database at version ``found`` still needs, in order."""
    return MIGRATIONS[found:]


def chain_backfill(
    rows: Iterable[Sequence[object]], previous: bytes = GENESIS
) -> tuple[list[tuple[bytes | None, int]], bytes]:
    """Compute the chain hashes of stored rows (the first nine chain columns, in order).

    Args:
        rows: rows in position order, continuing after the row whose hash is ``previous``.
        previous: the hash to chain the first row to.

    Returns:
        ``(hash, position)`` pairs for an ``UPDATE``, and the hash to continue the next page
        from. A row too damaged to hash gets ``None`` (so ``check`` reports it) and the chain
        continues from the row before it.
    """
    updates: list[tuple[bytes | None, int]] = []
    for row in rows:
        position = row[0]
        assert isinstance(position, int), "position is the integer primary key"
        try:
            previous = chain_hash(previous, row)
        except (TypeError, ValueError):
            updates.append((None, position))
            continue
        updates.append((previous, position))
    return updates, previous
