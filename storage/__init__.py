"""Storage: Postgres with pgvector (embedded by default), migrations, repositories, the audit trail."""

from storage.audit import AuditEntry, AuditError, AuditIntegrityError, AuditLog, VerifyReport, redact_secrets
from storage.database import Database, is_connection_lost, redact, to_async_url
from storage.errors import (
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    PgvectorMissingError,
    StorageError,
)
from storage.results import PostgresResultStore

__all__ = [
    "AuditEntry",
    "AuditError",
    "AuditIntegrityError",
    "AuditLog",
    "ConflictError",
    "Database",
    "DatabaseUnavailableError",
    "NotFoundError",
    "PgvectorMissingError",
    "PostgresResultStore",
    "StorageError",
    "VerifyReport",
    "is_connection_lost",
    "redact",
    "redact_secrets",
    "to_async_url",
]
