"""Schema versions of the SQL stores: the fast check on every open, Alembic only when needed.

Opening a store first reads the revision in ``alembic_version`` with the backend's own driver
and compares it with :data:`~loomkin.persistence.migrations.HEAD`. Only when the database is
older (or empty) does :func:`upgrade` import Alembic and SQLAlchemy (a few hundred
milliseconds) and run the scripts in ``migrations/versions`` on a SQLAlchemy connection made
from a plain DB-API connection factory. A revision newer than the code knows stops the open
with :class:`~loomkin.errors.SchemaVersionError` instead of touching the data.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from loomkin.errors import SchemaVersionError
from loomkin.persistence.migrations import HEAD, REVISIONS, SCRIPT_LOCATION

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["needs_upgrade", "upgrade"]

# Alembic's ``context`` is a module-level proxy, so two migrations in one process (two stores
# opened at once, each migrating from its own thread) must not overlap.
_MIGRATING = threading.Lock()


class _DbapiConnection(Protocol):
    def close(self) -> None: ...


def needs_upgrade(found: str | None, *, where: str) -> bool:
    """Return whether a database at revision ``found`` (``None``: no schema) must be migrated.

    Raises:
        SchemaVersionError: ``found`` is newer than :data:`HEAD` or not a known revision;
            the message names both versions and ``where`` (the file or schema).
    """
    if found == HEAD:
        return False
    if found is None or found in REVISIONS:
        return True
    if found.isdigit() and int(found) > int(HEAD):
        raise SchemaVersionError(
            f"{where} has schema version {found!r}, newer than this code knows (it reads up "
            f"to {HEAD!r}); upgrade Loomkin to open it"
        )
    raise SchemaVersionError(
        f"{where} has unknown schema version {found!r} (this code knows {', '.join(REVISIONS)})"
    )


def upgrade(
    dialect_url: str, creator: Callable[[], _DbapiConnection], *, schema: str | None = None
) -> None:
    """Migrate a database to :data:`HEAD` with Alembic (blocking; run it off the event loop).

    Args:
        dialect_url: a SQLAlchemy URL naming only the dialect (``"sqlite://"``,
            ``"postgresql+psycopg://"``); connections come from ``creator``.
        creator: returns a new DB-API connection to the database.
        schema: the Postgres schema (created if missing); ``None`` for SQLite.
    """
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(dialect_url, creator=creator, poolclass=NullPool)
    try:
        with _MIGRATING, engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(SCRIPT_LOCATION))
            config.attributes["connection"] = connection
            config.attributes["schema"] = schema
            command.upgrade(config, HEAD)
    finally:
        engine.dispose()
