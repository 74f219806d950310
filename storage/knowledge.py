"""The knowledge base: documents, their chunks with embeddings, and hybrid search.

Search fuses two rankings with reciprocal rank fusion: pgvector's HNSW index by cosine distance (meaning)
and Postgres full text (exact words, names, numbers that embeddings blur). Either alone misses what the
other finds; RRF needs no score calibration between them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Float, cast, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import StorageError
from storage.models import KnowledgeChunk, KnowledgeEntry, Memory, SystemMeta

__all__ = [
    "EMBEDDING_META_KEY",
    "ChunkDraft",
    "EmbeddingMismatchError",
    "EntryRecord",
    "KnowledgeRepository",
    "Passage",
]

EMBEDDING_META_KEY = "embedding"
RRF_K = 60
"""Reciprocal rank fusion constant: a hit's score is the sum of 1 / (RRF_K + rank) over the rankings."""
EF_SEARCH = 100
"""HNSW candidates examined per query: above pgvector's default 40 for recall, still a few ms."""


class EmbeddingMismatchError(StorageError):
    """The stored vectors came from another model or dimension than the configured one."""


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A passage to store: its text, its vector and where it came from (page, section)."""

    content: str
    embedding: list[float]
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """A stored document."""

    id: uuid.UUID
    title: str
    source: str
    chunks: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Passage:
    """A search hit: the passage and enough about its document to cite it."""

    chunk_id: uuid.UUID
    entry_id: uuid.UUID
    title: str
    source: str
    content: str
    score: float
    """Fused relevance scaled to 0..1 (1: first in both rankings)."""
    page: int | None = None
    section: str | None = None

    def citation(self) -> str:
        """ "title, p. 3, § Backups" - what a reply cites."""
        parts = [self.title or self.source]
        if self.page is not None:
            parts.append(f"p. {self.page}")
        if self.section:
            parts.append(f"§ {self.section}")
        return ", ".join(parts)


class KnowledgeRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    # -- the embedding model on record --------------------------------------------------------------------
    async def embedding_meta(self) -> dict[str, Any] | None:
        """The model and dimension the stored vectors were made with, if any were recorded."""
        async with self._sessionmaker() as session:
            row = await session.get(SystemMeta, EMBEDDING_META_KEY)
            return dict(row.value) if row else None

    async def record_embedding_meta(self, model: str, dimension: int) -> None:
        async with self._sessionmaker() as session, session.begin():
            value = {"model": model, "dimension": dimension}
            await session.execute(
                insert(SystemMeta)
                .values(key=EMBEDDING_META_KEY, value=value)
                .on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )

    async def check_embedding(self, model: str, dimension: int) -> None:
        """Record the model on first use; refuse to mix vectors of another model (``reembed`` fixes it)."""
        meta = await self.embedding_meta()
        if meta is None:
            await self.record_embedding_meta(model, dimension)
            return
        if meta.get("model") != model or meta.get("dimension") != dimension:
            raise EmbeddingMismatchError(
                f"The knowledge base was embedded with {meta.get('model')} ({meta.get('dimension')} "
                f"dimensions) but the configured model is {model} ({dimension}); run `kommandant reembed`."
            )

    # -- documents ----------------------------------------------------------------------------------------
    async def find_by_hash(self, content_hash: str) -> EntryRecord | None:
        async with self._sessionmaker() as session:
            entry = await session.scalar(
                select(KnowledgeEntry).where(KnowledgeEntry.content_hash == content_hash)
            )
            return await _entry_record(session, entry) if entry else None

    async def add(
        self,
        *,
        title: str,
        source: str,
        content_hash: str,
        mime_type: str | None,
        chunks: Sequence[ChunkDraft],
        data: dict[str, Any] | None = None,
    ) -> tuple[EntryRecord, bool]:
        """Store a document and its chunks in one transaction; ``(existing, True)`` if its hash is known."""
        async with self._sessionmaker() as session, session.begin():
            entry_id = await session.scalar(
                insert(KnowledgeEntry)
                .values(
                    id=uuid.uuid4(),
                    title=title[:500],
                    source=source[:2000],
                    content_hash=content_hash,
                    mime_type=mime_type,
                    data=data or {},
                )
                .on_conflict_do_nothing(index_elements=["content_hash"])
                .returning(KnowledgeEntry.id)
            )
            if entry_id is None:
                existing = await session.scalar(
                    select(KnowledgeEntry).where(KnowledgeEntry.content_hash == content_hash)
                )
                assert existing is not None
                return await _entry_record(session, existing), True
            if chunks:
                await session.execute(
                    insert(KnowledgeChunk),
                    [
                        {
                            "id": uuid.uuid4(),
                            "entry_id": entry_id,
                            "seq": seq,
                            "content": chunk.content,
                            "embedding": chunk.embedding,
                            "data": chunk.data,
                        }
                        for seq, chunk in enumerate(chunks)
                    ],
                )
            entry = await session.get(KnowledgeEntry, entry_id)
            assert entry is not None
            return await _entry_record(session, entry), False

    async def count(self) -> tuple[int, int]:
        """(documents, chunks) in the knowledge base."""
        async with self._sessionmaker() as session:
            entries = await session.scalar(select(func.count()).select_from(KnowledgeEntry))
            chunks = await session.scalar(select(func.count()).select_from(KnowledgeChunk))
            return int(entries or 0), int(chunks or 0)

    # -- search -------------------------------------------------------------------------------------------
    async def search(
        self, query: str, embedding: list[float] | None, *, limit: int = 5, candidates: int = 50
    ) -> list[Passage]:
        """The best passages for ``query``: HNSW cosine and full-text rankings fused by RRF."""
        async with self._sessionmaker() as session, session.begin():
            rankings: list[list[uuid.UUID]] = []
            if embedding is not None:
                await session.execute(text(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, candidates)}"))
                distance = KnowledgeChunk.embedding.cosine_distance(embedding)
                rankings.append(
                    list(
                        await session.scalars(
                            select(KnowledgeChunk.id)
                            .where(KnowledgeChunk.embedding.is_not(None))
                            .order_by(distance)
                            .limit(candidates)
                        )
                    )
                )
            # Full text needs every word of the query (names, numbers, codes: where embeddings blur).
            # Passages sharing only some words were tried as a third ranking and hurt: in a fusion, common
            # words alone outvote meaning.
            words = func.plainto_tsquery("english", query)
            rank = cast(func.ts_rank_cd(KnowledgeChunk.tsv, words), Float)
            rankings.append(
                list(
                    await session.scalars(
                        select(KnowledgeChunk.id)
                        .where(KnowledgeChunk.tsv.op("@@")(words))
                        .order_by(rank.desc())
                        .limit(candidates)
                    )
                )
            )
            weights = [1.0] * len(rankings)
            fused = fuse(rankings, weights)[:limit]
            if not fused:
                return []
            ids = [chunk_id for chunk_id, _ in fused]
            rows = (
                await session.execute(
                    select(KnowledgeChunk, KnowledgeEntry)
                    .join(KnowledgeEntry, KnowledgeEntry.id == KnowledgeChunk.entry_id)
                    .where(KnowledgeChunk.id.in_(ids))
                )
            ).all()
        best = sum(weights) / (RRF_K + 1)
        by_id = {chunk.id: (chunk, entry) for chunk, entry in rows}
        passages = []
        for chunk_id, score in fused:
            if chunk_id not in by_id:
                continue  # deleted between the two queries
            chunk, entry = by_id[chunk_id]
            data = chunk.data or {}
            passages.append(
                Passage(
                    chunk_id=chunk.id,
                    entry_id=entry.id,
                    title=entry.title,
                    source=entry.source,
                    content=chunk.content,
                    score=min(1.0, score / best),
                    page=data.get("page"),
                    section=data.get("section"),
                )
            )
        return passages

    # -- re-embedding -------------------------------------------------------------------------------------
    async def prepare_reembed(self, dimension: int) -> None:
        """Make the vector columns hold ``dimension`` floats; a changed size drops the old vectors."""
        async with self._sessionmaker() as session, session.begin():
            for table, index in (
                ("knowledge_chunks", "ix_knowledge_chunks_embedding"),
                ("memories", "ix_memories_embedding"),
            ):
                current = await session.scalar(
                    text(
                        "SELECT atttypmod FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                        "AND attname = 'embedding'"
                    ),
                    {"t": table},
                )
                if current == dimension:
                    continue
                await session.execute(text(f"DROP INDEX IF EXISTS {index}"))
                await session.execute(
                    text(
                        f"ALTER TABLE {table} ALTER COLUMN embedding TYPE vector({int(dimension)}) USING NULL"
                    )
                )
                await session.execute(
                    text(
                        f"CREATE INDEX {index} ON {table} USING hnsw (embedding vector_cosine_ops) "
                        "WITH (m = 16, ef_construction = 64)"
                    )
                )

    async def texts_after(
        self, table: str, after: uuid.UUID | None, batch: int
    ) -> list[tuple[uuid.UUID, str]]:
        """The next ``batch`` (id, text) pairs of ``table`` ('chunks' or 'memories') in id order."""
        model: type[KnowledgeChunk] | type[Memory] = KnowledgeChunk if table == "chunks" else Memory
        query = select(model.id, model.content).order_by(model.id).limit(batch)
        if after is not None:
            query = query.where(model.id > after)
        async with self._sessionmaker() as session:
            return [(row[0], row[1]) for row in (await session.execute(query)).all()]

    async def set_embeddings(self, table: str, vectors: Sequence[tuple[uuid.UUID, list[float]]]) -> None:
        model: type[KnowledgeChunk] | type[Memory] = KnowledgeChunk if table == "chunks" else Memory
        async with self._sessionmaker() as session, session.begin():
            # ORM bulk update by primary key: one executemany, not a statement per row.
            await session.execute(update(model), [{"id": i, "embedding": v} for i, v in vectors])


def fuse(
    rankings: Sequence[Sequence[uuid.UUID]], weights: Sequence[float] | None = None
) -> list[tuple[uuid.UUID, float]]:
    """Weighted reciprocal rank fusion of best-first id lists: (id, score), best first."""
    scores: dict[uuid.UUID, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for position, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (RRF_K + position)
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)


async def _entry_record(session: AsyncSession, entry: KnowledgeEntry) -> EntryRecord:
    chunks = await session.scalar(
        select(func.count()).select_from(KnowledgeChunk).where(KnowledgeChunk.entry_id == entry.id)
    )
    return EntryRecord(
        id=entry.id,
        title=entry.title,
        source=entry.source,
        chunks=int(chunks or 0),
        created_at=entry.created_at,
    )
