"""Alembic environment: runs on the connection lendcore hands it."""

from __future__ import annotations

from alembic import context

from lendcore.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - lendcore always passes one
    raise RuntimeError("run migrations through `lendcore db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
context.run_migrations()
