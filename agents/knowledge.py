"""The knowledge agent: search the knowledge base with citations, add notes, list the documents, and
ingest files that front doors staged (uploads are parsed and embedded here, never in a front door)."""

from __future__ import annotations

import logging

from agents.base import Agent, CallContext
from agents.documents import text_document
from agents.ingest import ingest_bytes
from agents.knowledge_base import CheckedEmbedder, KnowledgeBase, as_agent_errors, content_hash, reembed
from agents.services import Services
from storage.listing import knowledge_entries
from storage.uploads import StagedUploadRepository
from tools.builtin import knowledge as knowledge_tools
from tools.builtin.knowledge import (
    KnowledgeAdded,
    KnowledgeAddInput,
    KnowledgeDocument,
    KnowledgeEntry,
    KnowledgeHit,
    KnowledgeIngestInput,
    KnowledgeIngestResult,
    KnowledgeList,
    KnowledgeListInput,
    KnowledgeSearchInput,
    KnowledgeSearchResult,
)

log = logging.getLogger(__name__)

__all__ = ["CheckedEmbedder", "KnowledgeAgent", "KnowledgeBase", "content_hash", "reembed"]


class KnowledgeAgent(Agent):
    name = knowledge_tools.AGENT
    description = "Searches and grows the knowledge base."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.knowledge = KnowledgeBase(services)
        self.uploads = StagedUploadRepository(services.database.sessionmaker)
        self.register(knowledge_tools.SEARCH, self.search)
        self.register(knowledge_tools.ADD, self.add)
        self.register(knowledge_tools.LIST, self.list_documents)
        self.register(knowledge_tools.INGEST, self.ingest)

    async def start(self) -> None:
        """Drop uploads that were staged and never asked for (a front door that stopped in between)."""
        purged = await self.uploads.purge_stale()
        if purged:
            log.info("removed %d stale staged upload(s)", purged)

    async def search(self, args: KnowledgeSearchInput, ctx: CallContext) -> KnowledgeSearchResult:
        async with as_agent_errors():
            passages = await self.knowledge.search(args.query, limit=args.limit)
        hits = [
            KnowledgeHit(
                id=str(p.entry_id),
                title=p.title,
                snippet=p.content,
                score=round(p.score, 4),
                source=p.source,
                page=p.page,
                section=p.section,
            )
            for p in passages
        ]
        return KnowledgeSearchResult(query=args.query, hits=hits)

    async def add(self, args: KnowledgeAddInput, ctx: CallContext) -> KnowledgeAdded:
        title = args.title or " ".join(args.content.split()[:8])
        document = text_document(args.content, title)
        async with as_agent_errors():
            entry, duplicate = await self.knowledge.add(document, source=f"note by {ctx.user}", user=ctx.user)
        return KnowledgeAdded(
            entry=KnowledgeEntry(
                id=str(entry.id),
                title=args.title or entry.title,
                chunks=entry.chunks,
                created_at=entry.created_at,
            ),
            duplicate=duplicate,
        )

    async def list_documents(self, args: KnowledgeListInput, ctx: CallContext) -> KnowledgeList:
        entries = await knowledge_entries(self.services.database.sessionmaker, limit=args.limit)
        return KnowledgeList(
            entries=[
                KnowledgeDocument(id=str(e.id), title=e.title, source=e.source, created_at=e.created_at)
                for e in entries
            ]
        )

    async def ingest(self, args: KnowledgeIngestInput, ctx: CallContext) -> KnowledgeIngestResult:
        """Read the caller's staged upload, ingest it, and delete it: one outcome, stored or not."""
        await self.uploads.purge_stale()
        staged = await self.uploads.get(args.id, owner=ctx.user)  # NotFoundError: an error result
        try:
            outcome = await ingest_bytes(
                self.services, staged.name, staged.content, user=ctx.user, knowledge=self.knowledge
            )
        finally:
            await self.uploads.delete(staged.id)
        return KnowledgeIngestResult(files=[outcome])
