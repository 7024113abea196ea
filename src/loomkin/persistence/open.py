"""Open an event store from a URL (the ``store`` setting of ``loomkin.toml``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from loomkin.errors import ConfigError
from loomkin.persistence.memory import MemoryStore
from loomkin.persistence.postgres import PostgresStore, redact_url
from loomkin.persistence.sqlite import SqliteStore

if TYPE_CHECKING:
    from loomkin.core.store import EventStore

__all__ = ["open_store"]

_EXPECTED = "memory:, sqlite:///absolute/path.db, a file path, or postgresql://…"


async def open_store(url: str) -> EventStore:
    """Open the event store ``url`` names, migrating its schema if needed.

    Accepted forms:

    * ``memory:`` — a :class:`MemoryStore` (nothing survives the process).
    * ``sqlite:///abs/path.db`` or a plain file path (relative to the working folder) — a
      :class:`SqliteStore`; ``?synchronous=FULL`` adds an fsync per commit.
    * ``postgresql://user@host:port/db`` (or ``postgres://``) — a :class:`PostgresStore`;
      ``?schema=name`` picks the Postgres schema (default ``public``).

    Raises:
        ConfigError: the URL is malformed or names an unsupported backend or option.
    """
    text = url.strip()
    if not text:
        raise ConfigError("the store URL is empty; expected " + _EXPECTED)
    if text in ("memory:", "memory://"):
        return MemoryStore()
    scheme = text.split(":", 1)[0].lower() if "://" in text else ""
    if scheme == "sqlite":
        return await _open_sqlite(text)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return await _open_postgres(text)
    if scheme or text.lower().startswith(("memory:", "sqlite:", "postgres")):
        raise ConfigError(f"unsupported store URL {redact_url(text)!r}; expected {_EXPECTED}")
    return await SqliteStore.open(Path(text))


async def _open_sqlite(url: str) -> SqliteStore:
    parts = urlsplit(url)
    options = _options(url, parts.query, allowed={"synchronous"})
    if parts.netloc or not parts.path.strip("/"):
        raise ConfigError(
            f"SQLite store URL {url!r} must be sqlite:///absolute/path.db (three slashes, "
            "then the path)"
        )
    synchronous = options.get("synchronous", "NORMAL").upper()
    if synchronous == "NORMAL":
        return await SqliteStore.open("/" + parts.path.lstrip("/"), synchronous="NORMAL")
    if synchronous == "FULL":
        return await SqliteStore.open("/" + parts.path.lstrip("/"), synchronous="FULL")
    raise ConfigError(f"store URL {url!r}: synchronous must be NORMAL or FULL")


async def _open_postgres(url: str) -> PostgresStore:
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
