"""Alembic environment: runs on a connection the store hands over, never from a config file.

The store passes an open SQLAlchemy connection in ``config.attributes["connection"]`` and, for
Postgres, the schema in ``config.attributes["schema"]``. Before Alembic reads the current
revision, the migration takes the database's write lock (SQLite: ``BEGIN IMMEDIATE`` on a
driver connection in autocommit mode; Postgres: a transaction-level advisory lock keyed on the
schema), so several processes opening the same fresh database migrate it once, one after the
other; the later ones find it up to date. DDL is transactional on both, so a migration killed
half-way leaves the previous revision intact.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

config = context.config
connection = config.attributes["connection"]
assert isinstance(connection, Connection), "the store passes an open connection"
schema = config.attributes.get("schema")

context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql" and isinstance(schema, str):
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.run_migrations()
