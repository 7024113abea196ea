"""Store backends (memory, SQLite, Postgres) and :func:`open_store` to pick one by URL.

``PostgresStore`` is imported on first use, so that opening a SQLite or memory store (the
CLI's default) never pays for importing the Postgres driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.persistence.memory import MemoryStore
from loomkin.persistence.open import check_store, open_store
from loomkin.persistence.sqlite import SqliteStore, Synchronous

if TYPE_CHECKING:
    from loomkin.persistence.postgres import PostgresStore

__all__ = [
    "MemoryStore",
    "PostgresStore",
    "SqliteStore",
    "Synchronous",
    "check_store",
    "open_store",
]


def __getattr__(name: str) -> object:
    if name == "PostgresStore":
        from loomkin.persistence.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
