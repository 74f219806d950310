"""Read-only listings behind the listing tools: a person's current facts, the knowledge base's documents."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.memory import _live
from storage.models import KnowledgeEntry, Memory
from storage.records import Record


class FactListing(Record):
    """A remembered fact as a resource shows it."""

    id: uuid.UUID
    subject: str | None
    content: str
    created_at: datetime


class EntryListing(Record):
    """A knowledge-base document as a resource shows it."""

    id: uuid.UUID
    title: str
    source: str
    created_at: datetime


async def memory_facts(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: str, *, limit: int = 200
) -> list[FactListing]:
    """The person's current semantic facts (not forgotten, not superseded, not expired), newest first."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Memory.id, Memory.subject, Memory.content, Memory.created_at)
            .where(*_live(user_id))
            .order_by(Memory.created_at.desc())
            .limit(limit)
        )
        return [FactListing.model_validate(row._mapping) for row in rows]


async def knowledge_entries(
    sessionmaker: async_sessionmaker[AsyncSession], *, limit: int = 200
) -> list[EntryListing]:
    """The knowledge base's documents, newest first."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(KnowledgeEntry.id, KnowledgeEntry.title, KnowledgeEntry.source, KnowledgeEntry.created_at)
            .order_by(KnowledgeEntry.created_at.desc())
            .limit(limit)
        )
        return [EntryListing.model_validate(row._mapping) for row in rows]
