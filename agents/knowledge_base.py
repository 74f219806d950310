"""The knowledge base: documents in (chunked, embedded, stored), passages out (hybrid search).

Shared by the knowledge agent's tools and by file ingestion; the embedder is checked once against the
model the stored vectors were made with.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from agents.documents import Document, chunk_document
from agents.errors import AgentError
from agents.services import Services
from embeddings import Embedder, EmbeddingError, embedder_from_settings
from storage.knowledge import ChunkDraft, EmbeddingMismatchError, EntryRecord, KnowledgeRepository, Passage

log = logging.getLogger(__name__)

__all__ = ["CheckedEmbedder", "KnowledgeBase", "as_agent_errors", "content_hash", "reembed"]


def content_hash(document: Document) -> str:
    """SHA-256 of a document's text with whitespace normalised: the same content twice is one entry."""
    words = "\n".join(" ".join(block.text.split()) for block in document.blocks)
    return hashlib.sha256(words.encode()).hexdigest()


def _embedding_text(title: str, section: str | None, text: str) -> str:
    """What is embedded for a chunk: its heading gives a short passage the context it lacks."""
    return f"{section}: {text}" if section and section != title else text


@asynccontextmanager
async def as_agent_errors() -> AsyncIterator[None]:
    """Embedding problems are the person's to fix (a model to install, reembed to run): say so."""
    try:
        yield
    except (EmbeddingError, EmbeddingMismatchError) as err:
        raise AgentError(str(err)) from err


class CheckedEmbedder:
    """The configured embedder, checked once against the model the database records (or recording it)."""

    def __init__(self, services: Services, embedder: Embedder | None = None) -> None:
        self.embedder = embedder or embedder_from_settings(services.settings)
        self._repository = KnowledgeRepository(services.database.sessionmaker)
        self._checked = False
        self._lock = asyncio.Lock()

    def ready(self) -> bool:
        """True when embedding needs no model load first."""
        return self.embedder.ready()

    def warm(self) -> None:
        """Start loading the model in the background."""
        self.embedder.warm()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors for ``texts``; raises ``EmbeddingMismatchError`` when the stored ones differ in model."""
        if not self._checked:
            async with self._lock:
                if not self._checked:
                    embedder = self.embedder
                    await self._repository.check_embedding(embedder.model, await embedder.dimension())
                    self._checked = True
        return await self.embedder.embed(texts)


class KnowledgeBase:
    """Documents in, passages out: chunking, embedding and the repository, shared by agent and ingest."""

    def __init__(self, services: Services, embedder: CheckedEmbedder | None = None) -> None:
        self.repository = KnowledgeRepository(services.database.sessionmaker)
        self.embedder = embedder or CheckedEmbedder(services)

    async def add(self, document: Document, *, source: str, user: str) -> tuple[EntryRecord, bool]:
        """Chunk, embed and store ``document``; ``(entry, True)`` when its content was there already."""
        digest = content_hash(document)
        existing = await self.repository.find_by_hash(digest)
        if existing is not None:
            return existing, True
        chunks = chunk_document(document)
        vectors = await self.embedder.embed(
            [_embedding_text(document.title, c.section, c.text) for c in chunks]
        )
        drafts = [ChunkDraft(c.text, v, c.metadata()) for c, v in zip(chunks, vectors, strict=True)]
        return await self.repository.add(
            title=document.title,
            source=source,
            content_hash=digest,
            mime_type=document.mime_type,
            chunks=drafts,
            data={"added_by": user},
        )

    async def search(self, query: str, *, limit: int = 5) -> list[Passage]:
        """Hybrid search: meaning (HNSW) and words (full text), fused.

        While the model is still loading (the first seconds of a process), words alone answer rather
        than making the person wait."""
        vector: list[float] | None = None
        if self.embedder.ready():
            [vector] = await self.embedder.embed([query])
        else:
            self.embedder.warm()
            log.info("embedding model still loading: full-text search only")
        return await self.repository.search(query, vector, limit=limit)


async def reembed(
    repository: KnowledgeRepository,
    embedder: Embedder,
    *,
    batch: int = 256,
    progress: Callable[[str, int], Awaitable[None]] | None = None,
) -> dict[str, int]:
    """Embed every chunk and memory again with ``embedder`` and record it as the model on file.

    A new dimension re-types the vector columns first (their HNSW indexes are rebuilt). Rows are walked
    in id order, a batch at a time, so memory stays flat whatever the size of the knowledge base.
    """
    dimension = await embedder.dimension()
    await repository.prepare_reembed(dimension)
    counts: dict[str, int] = {}
    for table in ("chunks", "memories"):
        done, after = 0, None
        while rows := await repository.texts_after(table, after, batch):
            vectors = await embedder.embed([content for _, content in rows])
            await repository.set_embeddings(table, [(i, v) for (i, _), v in zip(rows, vectors, strict=True)])
            done, after = done + len(rows), rows[-1][0]
            if progress is not None:
                await progress(table, done)
        counts[table] = done
    await repository.record_embedding_meta(embedder.model, dimension)
    return counts
