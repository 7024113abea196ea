"""Store maintenance through the facade: what ``loomkin store check`` runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.persistence import check_store as _check_store

if TYPE_CHECKING:
    from loomkin.core.store import CheckReport

__all__ = ["check_store"]


async def check_store(url: str) -> CheckReport:
    """Verify the store ``url`` names end to end and close it; never creates one.

    Walks the whole log: positions without gaps, every event decodes, the hash chain holds
    (SQLite also checks its b-tree and the head recorded beside the write-ahead log, so a lost
    or damaged ``-wal`` file shows). The report says the first problem, if any
    (:meth:`~loomkin.core.store.CheckReport.summary` is one line).

    Raises:
        NotFound: a SQLite file that does not exist.
        ConfigError: the URL is malformed.
        CorruptStoreError: the store is empty, foreign or truncated (it cannot even open).
        StoreError: the store cannot be reached.
    """
    return await _check_store(url)
