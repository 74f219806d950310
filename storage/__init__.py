"""Storage: Postgres with pgvector (embedded by default), migrations, repositories, the audit trail."""

from storage.database import Database, redact, to_async_url
from storage.errors import (
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    PgvectorMissingError,
    StorageError,
)
from storage.results import PostgresResultStore

__all__ = [
    "ConflictError",
    "Database",
    "DatabaseUnavailableError",
    "NotFoundError",
    "PgvectorMissingError",
    "PostgresResultStore",
    "StorageError",
    "redact",
    "to_async_url",
]
