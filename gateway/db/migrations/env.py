"""Alembic environment: runs on the connection ``gateway.db.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from gateway.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `huiliu db upgrade` (it passes the async engine's connection)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
