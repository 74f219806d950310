"""Alembic environment: migrations always run on a connection handed in by ``storage.migrate``."""

from alembic import context

from storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through 'kommandant db upgrade' (storage.migrate), not the alembic CLI"
    )

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
