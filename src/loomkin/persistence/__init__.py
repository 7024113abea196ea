"""Event store backends (memory, SQLite, Postgres) and :func:`open_store` to pick one by URL."""

from loomkin.persistence.memory import MemoryStore
from loomkin.persistence.open import open_store
from loomkin.persistence.postgres import PostgresStore
from loomkin.persistence.sqlite import SqliteStore, Synchronous

__all__ = ["MemoryStore", "PostgresStore", "SqliteStore", "Synchronous", "open_store"]
