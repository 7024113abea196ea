"""Open a store from a URL (the ``store`` setting of ``loomkin.toml``), or check one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from loomkin.errors import ConfigError, NotFound
from loomkin.persistence._urls import redact_url
from loomkin.persistence.memory import MemoryStore
from loomkin.persistence.sqlite import SqliteStore

if TYPE_CHECKING:
    from loomkin.core.store import CheckReport, Store
    from loomkin.persistence.postgres import PostgresStore
    from loomkin.runtime.clock import Clock

__all__ = ["check_store", "open_store"]

_EXPECTED = "memory:, sqlite:///absolute/path.db, a file path, or postgresql://…"


async def check_store(url: str) -> CheckReport:
    """Open the store ``url`` names, verify it end to end, close it: ``loomkin store check``.

    Unlike :func:`open_store`, a SQLite file that lost acknowledged events (a lost WAL) opens
    so that the report can say so; every other reason a store cannot open (empty, foreign or
    truncated file, newer schema, unreachable server) still raises. Opening an older store
    migrates its schema first, as :func:`open_store` does.

    Checking never creates a store: a SQLite file that does not exist is an error.

    Raises:
        NotFound: the SQLite file does not exist.
        ConfigError, StoreError: as :func:`open_store`.
    """
    path = _sqlite_path(url.strip())
    if path is not None and not await asyncio.to_thread(path.exists):
        raise NotFound(f"no store at {str(path)!r}: the file does not exist (nothing to check)")
    store = await open_store(url, verify_head=False)
    try:
        return await store.check()
    finally:
        await store.close()


async def open_store(url: str, *, clock: Clock | None = None, verify_head: bool = True) -> Store:
    """Open the store ``url`` names, creating or migrating its schema if needed.

    Accepted forms:

    * ``memory:`` — a :class:`MemoryStore` (nothing survives the process).
    * ``sqlite:///abs/path.db`` or a plain file path (relative to the working folder) — a
      :class:`SqliteStore`; ``?synchronous=FULL`` adds an fsync per commit.
    * ``postgresql://user@host:port/db`` (or ``postgres://``) — a :class:`PostgresStore`;
      ``?schema=name`` picks the Postgres schema (default ``public``).

    Args:
        url: the store URL (see above).
        clock: time source for leases of the memory and SQLite stores (Postgres uses the
            server's clock).
        verify_head: SQLite only: refuse a file that lost acknowledged events (see
            :meth:`SqliteStore.open`); :func:`check_store` turns it off to report instead.

    Raises:
        ConfigError: the URL is malformed or names an unsupported backend or option.
        CorruptStoreError: the store exists but is empty, foreign or damaged.
        SchemaVersionError: the store was written by a newer Loomkin.
        StoreError: the store cannot be reached or opened.
    """
    text = url.strip()
    if not text:
        raise ConfigError("the store URL is empty; expected " + _EXPECTED)
    if text in ("memory:", "memory://"):
        return MemoryStore(clock=clock)
    scheme = text.split(":", 1)[0].lower() if "://" in text else ""
    if scheme == "sqlite":
        return await _open_sqlite(text, clock=clock, verify_head=verify_head)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return await _open_postgres(text)
    if scheme or text.lower().startswith(("memory:", "sqlite:", "postgres")):
        raise ConfigError(f"unsupported store URL {redact_url(text)!r}; expected {_EXPECTED}")
    return await SqliteStore.open(Path(text), clock=clock, verify_head=verify_head)


def _sqlite_path(text: str) -> Path | None:
    """The file a SQLite store URL (or plain path) names; ``None`` for other backends."""
    if text in ("memory:", "memory://") or text.lower().startswith(("memory:", "postgres")):
        return None
    if "://" not in text:
        return Path(text)
    if text.split(":", 1)[0].lower() != "sqlite":
        return None
    return Path("/" + urlsplit(text).path.lstrip("/"))


async def _open_sqlite(url: str, *, clock: Clock | None, verify_head: bool) -> SqliteStore:
    parts = urlsplit(url)
    options = _options(url, parts.query, allowed={"synchronous"})
    if parts.netloc or not parts.path.strip("/"):
        raise ConfigError(
            f"SQLite store URL {url!r} must be sqlite:///absolute/path.db (three slashes, "
            "then the path)"
        )
    synchronous = options.get("synchronous", "NORMAL").upper()
    path = "/" + parts.path.lstrip("/")
    if synchronous == "NORMAL":
        return await SqliteStore.open(
            path, synchronous="NORMAL", clock=clock, verify_head=verify_head
        )
    if synchronous == "FULL":
        return await SqliteStore.open(
            path, synchronous="FULL", clock=clock, verify_head=verify_head
        )
    raise ConfigError(f"store URL {url!r}: synchronous must be NORMAL or FULL")


async def _open_postgres(url: str) -> PostgresStore:
    from loomkin.persistence.postgres import PostgresStore  # the driver only when used

    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    schema = query.pop("schema", ["public"])
    if len(schema) != 1:
        raise ConfigError(f"store URL {redact_url(url)!r} gives 'schema' more than once")
    scheme = "postgresql"  # libpq does not know SQLAlchemy's "+psycopg" suffix
    rest = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query, doseq=True), ""))
    return await PostgresStore.open(rest, schema=schema[0])


def _options(url: str, query: str, *, allowed: set[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        if key not in allowed or len(values) != 1:
            raise ConfigError(f"store URL {url!r}: unsupported or repeated option {key!r}")
        options[key] = values[0]
    return options
