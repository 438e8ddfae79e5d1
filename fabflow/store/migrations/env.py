"""Alembic environment: fabflow passes the connection in; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from fabflow.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("fabflow migrations run through fabflow.store.db.migrate()")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
