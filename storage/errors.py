"""Errors of the storage layer: each message is a sentence a person can act on."""


class StorageError(Exception):
    """Base of every storage error."""


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached or started."""


class PgvectorMissingError(StorageError):
    """The database has no pgvector extension available."""


class NotFoundError(StorageError):
    """A row that was asked for does not exist."""


class ConflictError(StorageError):
    """A row with the same unique name exists already."""
