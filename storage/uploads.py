"""Uploads staged for the knowledge agent: a front door stores a file's bytes, the agent takes them.

Why Postgres and not the tool call: an upload may be up to ``ingest_max_file_bytes`` (20 MB by default),
twenty to a message, while a bus message is capped at ``max_message_bytes`` (1 MiB) and should stay
small (RabbitMQ keeps persistent messages on disk and redelivers them). Every process of a deployment,
a worker on another machine included, already shares the database, so the file waits there and the
ingest tool call carries only its id. The agent deletes a row once it has read it; rows nobody
asked for (a front door that died between staging and calling) are purged after ``STALE_AFTER``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import NotFoundError
from storage.models import StagedUpload
from storage.records import Record

__all__ = ["STALE_AFTER", "StagedFile", "StagedUploadRepository"]

STALE_AFTER = timedelta(hours=1)
"""A staged upload older than this was abandoned: nobody will ask for it any more."""


class StagedFile(Record):
    """A staged upload with its bytes, as the knowledge agent reads it."""

    id: uuid.UUID
    owner: str
    name: str
    size: int
    content: bytes
    created_at: datetime


class StagedUploadRepository:
    """Stage, take and purge uploaded files waiting for ingestion."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def stage(self, *, owner: str, name: str, content: bytes) -> uuid.UUID:
        """Keep ``content`` for ``owner`` under a new id, which the ingest call names."""
        row = StagedUpload(owner=owner, name=name[:500], size=len(content), content=content)
        async with self._sessionmaker() as session, session.begin():
            session.add(row)
            await session.flush()
            return row.id

    async def get(self, upload_id: uuid.UUID, *, owner: str) -> StagedFile:
        """The staged file, if ``owner`` staged it; ``NotFoundError`` with a sentence otherwise."""
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(StagedUpload).where(StagedUpload.id == upload_id, StagedUpload.owner == owner)
            )
            if row is None:
                raise NotFoundError(
                    f"There is no uploaded file {upload_id} waiting for you; it was read already or "
                    "has expired. Upload it again."
                )
            return StagedFile.model_validate(row)

    async def delete(self, upload_id: uuid.UUID) -> None:
        """Forget a staged file (after it was read, or when its ingest call could not be made)."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(delete(StagedUpload).where(StagedUpload.id == upload_id))

    async def purge_stale(self, older_than: timedelta = STALE_AFTER) -> int:
        """Delete staged files older than ``older_than``; returns how many."""
        cutoff = datetime.now(UTC) - older_than
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(delete(StagedUpload).where(StagedUpload.created_at < cutoff))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
