"""Agent memory: semantic facts that supersede older facts about the same subject, ranked recall."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Text, case, cast, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Memory
from storage.records import MemoryRecord


def _live(user_id: str, kind: str = "semantic") -> list:
    now = datetime.now(UTC)
    return [
        Memory.user_id == user_id,
        Memory.kind == kind,
        Memory.superseded_by.is_(None),
        Memory.forgotten_at.is_(None),
        or_(Memory.expires_at.is_(None), Memory.expires_at > now),
    ]


async def _forgettable(
    session: AsyncSession, *, user_id: str, query: str, subject: str | None
) -> list[MemoryRecord]:
    """The live facts matching ``query`` well enough to forget: at least half as well as the best."""
    found = await _ranked(session, user_id=user_id, query=query, subject=subject, limit=50)
    return [record for record, score in found if score >= found[0][1] * 0.5] if found else []


class MemoryRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def remember(
        self,
        *,
        user_id: str,
        content: str,
        subject: str | None,
        kind: str = "semantic",
        importance: float = 0.5,
        expires_at: datetime | None = None,
        embedding: list[float] | None = None,
        data: dict[str, Any] | None = None,
        call_key: str | None = None,
    ) -> tuple[MemoryRecord, list[MemoryRecord]]:
        """Store a fact; live facts about the same subject are superseded by it (kept as history).

        ``call_key`` (the storing call's idempotency key) makes it act once: called again with the same
        key, it returns the fact stored then and what that superseded, and stores nothing."""
        if call_key is not None:
            async with self._sessionmaker() as session:
                earlier = await session.scalar(select(Memory).where(Memory.call_key == call_key))
                if earlier is not None:
                    replaced = await session.scalars(select(Memory).where(Memory.superseded_by == earlier.id))
                    return MemoryRecord.model_validate(earlier), [
                        MemoryRecord.model_validate(r) for r in replaced
                    ]
        digest = hashlib.sha256(content.encode()).hexdigest()
        row = Memory(
            user_id=user_id,
            kind=kind,
            subject=subject,
            content=content,
            content_hash=digest,
            importance=importance,
            expires_at=expires_at,
            embedding=embedding,
            data=data or {},
            call_key=call_key,
        )
        async with self._sessionmaker() as session, session.begin():
            session.add(row)
            await session.flush()
            superseded: list[Memory] = []
            if subject:
                superseded = list(
                    (
                        await session.scalars(
                            update(Memory)
                            .where(*_live(user_id, kind), Memory.subject == subject, Memory.id != row.id)
                            .values(superseded_by=row.id)
                            .returning(Memory)
                        )
                    ).all()
                )
            await session.refresh(row)
            return MemoryRecord.model_validate(row), [MemoryRecord.model_validate(s) for s in superseded]

    async def recall(
        self,
        *,
        user_id: str,
        query: str,
        subject: str | None = None,
        limit: int = 5,
        embedding: list[float] | None = None,
    ) -> list[tuple[MemoryRecord, float]]:
        """Live facts best matching ``query``: subject, meaning (``embedding``), words, importance, recency.

        Counts an access on each fact returned."""
        async with self._sessionmaker() as session, session.begin():
            rows = await _ranked(
                session, user_id=user_id, query=query, subject=subject, limit=limit, embedding=embedding
            )
            if rows:
                await session.execute(
                    update(Memory)
                    .where(Memory.id.in_([record.id for record, _ in rows]))
                    .values(access_count=Memory.access_count + 1, last_accessed_at=datetime.now(UTC))
                )
        return rows

    async def forget(self, *, user_id: str, query: str, subject: str | None = None) -> list[MemoryRecord]:
        """Delete the live facts that match ``query`` well (and their superseded history); return them."""
        async with self._sessionmaker() as session, session.begin():
            strong = await _forgettable(session, user_id=user_id, query=query, subject=subject)
            ids = [r.id for r in strong]
            if ids:
                await session.execute(delete(Memory).where(Memory.superseded_by.in_(ids)))
                await session.execute(delete(Memory).where(Memory.id.in_(ids)))
        return strong

    async def would_forget(
        self, *, user_id: str, query: str, subject: str | None = None
    ) -> list[MemoryRecord]:
        """The live facts ``forget`` with these words would delete now, deleting nothing (for an approval)."""
        async with self._sessionmaker() as session:
            return await _forgettable(session, user_id=user_id, query=query, subject=subject)

    async def history(self, *, user_id: str, subject: str) -> list[MemoryRecord]:
        """Every fact ever stored about a subject, oldest first, superseded ones included."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(Memory)
                .where(Memory.user_id == user_id, Memory.subject == subject)
                .order_by(Memory.created_at)
            )
            return [MemoryRecord.model_validate(r) for r in rows]

    async def episodes(self, *, user_id: str, thread_id: str | None, limit: int = 6) -> list[MemoryRecord]:
        """The latest conversation turns of a thread (episodic memory), oldest first; expired ones skipped."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(Memory)
                .where(*_live(user_id, "episodic"), Memory.data["thread"].astext == (thread_id or ""))
                .order_by(Memory.created_at.desc())
                .limit(limit)
            )
            return [MemoryRecord.model_validate(r) for r in reversed(list(rows))]

    async def unembedded(self, *, user_id: str, limit: int = 200) -> list[tuple[uuid.UUID, str]]:
        """Live facts of a user stored without an embedding (the model was loading): (id, text)."""
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(Memory.id, Memory.content)
                .where(*_live(user_id), Memory.embedding.is_(None))
                .order_by(Memory.created_at)
                .limit(limit)
            )
            return [(row[0], row[1]) for row in rows.all()]

    async def set_embeddings(self, vectors: list[tuple[uuid.UUID, list[float]]]) -> None:
        """Store embeddings by memory id (one executemany)."""
        if vectors:
            async with self._sessionmaker() as session, session.begin():
                await session.execute(update(Memory), [{"id": i, "embedding": v} for i, v in vectors])

    async def get(self, memory_id: uuid.UUID) -> MemoryRecord | None:
        async with self._sessionmaker() as session:
            row = await session.get(Memory, memory_id)
            return MemoryRecord.model_validate(row) if row else None


SIMILAR = 0.4
"""Cosine similarity from which a fact counts as matching a query by meaning alone."""


async def _ranked(
    session: AsyncSession,
    *,
    user_id: str,
    query: str,
    subject: str | None,
    limit: int,
    embedding: list[float] | None = None,
) -> list[tuple[MemoryRecord, float]]:
    """A user's live facts matching ``query`` (any word, or meaning) or ``subject``, best first, scored.

    score = 2 x subject hit + full-text rank + 1.5 x cosine similarity + 0.2 x importance + recency bonus.
    """
    words = func.plainto_tsquery("english", query)
    any_word = func.to_tsquery(
        "english", func.replace(cast(func.plainto_tsquery("english", query), Text), "&", "|")
    )
    rank = func.ts_rank(Memory.tsv, any_word)
    subject_hit = case((Memory.subject == subject, 1.0), else_=0.0) if subject else literal(0.0)
    age_days = func.extract("epoch", func.now() - Memory.created_at) / 86400.0
    similarity: Any = literal(0.0)
    if embedding is not None:
        similarity = func.coalesce(1.0 - Memory.embedding.cosine_distance(embedding), 0.0)
    score = (
        subject_hit * 2.0
        + cast(rank, Float)
        + similarity * 1.5
        + Memory.importance * 0.2
        + 0.1 / (1.0 + age_days)
    ).label("score")
    matches = or_(Memory.tsv.op("@@")(any_word), Memory.tsv.op("@@")(words))
    if embedding is not None:
        matches = or_(matches, Memory.embedding.cosine_distance(embedding) < 1.0 - SIMILAR)
    if subject:
        matches = or_(matches, Memory.subject == subject)
    rows = (
        await session.execute(
            select(Memory, score).where(*_live(user_id), matches).order_by(score.desc()).limit(limit)
        )
    ).all()
    return [(MemoryRecord.model_validate(row[0]), float(row[1])) for row in rows]
