"""Versioned schema of the SQL event stores (Alembic scripts, shared by SQLite and Postgres).

The revision ids are zero-padded numbers so that an id this code does not know can be told
apart as *newer* (a database written by a later Loomkin) or *garbage*. :data:`HEAD` and
:data:`REVISIONS` are kept here, next to the scripts, so a store can compare the version it
finds with what it knows without importing Alembic at all (the fast path of every open).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEAD", "REVISIONS", "SCRIPT_LOCATION", "VERSION_TABLE"]

REVISIONS: tuple[str, ...] = ("0001",)
"""Every revision this code knows, oldest first (must match ``versions/``)."""
HEAD: str = REVISIONS[-1]
"""The revision a store is migrated to on open."""
SCRIPT_LOCATION: Path = Path(__file__).parent
"""Alembic ``script_location`` (this folder)."""
VERSION_TABLE: str = "alembic_version"
"""Alembic's table holding the current revision (Alembic's default name)."""
