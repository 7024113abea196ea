"""The event log table.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# On SQLite ``position`` must be declared exactly ``INTEGER`` so it aliases the rowid (the
# table's own B-tree key): no second index, and ``MAX(position)`` is a single seek.
_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``events`` with its uniqueness constraints and the session index."""
    op.create_table(
        "events",
        sa.Column("position", _POSITION, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("stream_version", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.Double(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
        sa.UniqueConstraint("stream", "stream_version", name="uq_events_stream_version"),
    )
    op.create_index("ix_events_session_position", "events", ["session_id", "position"])


def downgrade() -> None:
    """Drop the event log (loses every event; only for tests of the migration itself)."""
    op.drop_index("ix_events_session_position", table_name="events")
    op.drop_table("events")
