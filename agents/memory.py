"""The memory agent: remember facts (a newer fact about a subject supersedes the older), recall, forget."""

from __future__ import annotations

import logging
import re

from agents.base import Agent, CallContext
from agents.knowledge import CheckedEmbedder
from agents.services import Services
from embeddings import EmbeddingError
from storage.knowledge import EmbeddingMismatchError
from storage.listing import memory_facts
from storage.memory import MemoryRepository
from storage.records import MemoryRecord
from tools.builtin import memory
from tools.builtin.base import second_person
from tools.builtin.memory import (
    ForgetInput,
    ForgetResult,
    MemoryDescribeInput,
    MemoryFact,
    MemoryList,
    MemoryListInput,
    RecalledFact,
    RecallInput,
    RecallResult,
    RememberInput,
    RememberResult,
)
from tools.builtin.system import CallDescription

log = logging.getLogger(__name__)

_FACT = re.compile(
    r"^(?:that\s+)?(?:(?:my|our|the|his|her|their)\s+)?"
    r"(?P<subject>[\w' -]+?)\s+(?:is|are|was|were|=)\s+(?P<value>.+)$",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"^(?:(?:what|where|who|which|when|how)(?:'s|\s+is|\s+are|\s+was|\s+were)?\s+)?"
    r"(?:(?:my|our|the|his|her|their)\s+)?(?P<subject>.+?)[\s?.!]*$",
    re.IGNORECASE,
)


def _clean(words: str) -> str:
    return " ".join(words.lower().split())


_WHERE = re.compile(
    r"^(?:that\s+)?(?P<who>i|we)\s+(?:now\s+|currently\s+)?(?P<verb>live|work|study)\s+(?:in|at|for)\s+.+$",
    re.IGNORECASE,
)


def subject_of_fact(fact: str) -> str | None:
    """What a fact is about: "my editor is neovim" -> "editor", "I live in Ulm" -> "where i live";
    None when the fact has no such shape."""
    where = _WHERE.match(fact.strip())
    if where:
        return f"where {where.group('who').lower()} {where.group('verb').lower()}"
    match = _FACT.match(fact.strip())
    return _clean(match.group("subject")) if match else None


def subject_of_query(query: str) -> str:
    """The subject a question asks about: "what is my editor" -> "editor"."""
    match = _QUESTION.match(query.strip())
    return _clean(match.group("subject")) if match else _clean(query)


def _fact(record: MemoryRecord) -> MemoryFact:
    return MemoryFact(
        id=str(record.id), fact=record.content, subject=record.subject, created_at=record.created_at
    )


MAX_SCORE = 4.0
"""A recall score near the best possible (see ``storage.memory._ranked``), scaled to 1."""


class MemoryAgent(Agent):
    name = memory.AGENT
    description = "Remembers facts people tell it and recalls them."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.memories = MemoryRepository(services.database.sessionmaker)
        self.embedder = CheckedEmbedder(services)
        self.register(memory.REMEMBER, self.remember)
        self.register(memory.RECALL, self.recall)
        self.register(memory.FORGET, self.forget)
        self.register(memory.LIST, self.remembered_facts)
        self.register(memory.DESCRIBE, self.describe)

    async def _vector(self, text: str) -> list[float] | None:
        """The text's embedding, or None when the model is unavailable: the fact is still kept, and
        recall still finds it by its words."""
        if not self.embedder.ready():
            self.embedder.warm()  # this call goes on by words; later ones use meaning too
            return None
        try:
            return (await self.embedder.embed([text]))[0]
        except (EmbeddingError, EmbeddingMismatchError) as err:
            log.warning("memory without embedding: %s", err)
            return None

    async def remember(self, args: RememberInput, ctx: CallContext) -> RememberResult:
        record, superseded = await self.memories.remember(
            user_id=ctx.user,
            content=args.fact,
            subject=subject_of_fact(args.fact),
            embedding=await self._vector(args.fact),
            call_key=ctx.idempotency_key or None,
        )
        return RememberResult(fact=_fact(record), superseded=[_fact(s) for s in superseded])

    async def _backfill(self, user: str) -> None:
        """Embed facts stored while the model was loading, so recall by meaning finds them too."""
        if not self.embedder.ready():
            return
        missing = await self.memories.unembedded(user_id=user)
        if missing:
            try:
                vectors = await self.embedder.embed([text for _, text in missing])
            except (EmbeddingError, EmbeddingMismatchError) as err:
                log.warning("memory backfill skipped: %s", err)
                return
            await self.memories.set_embeddings(list(zip([i for i, _ in missing], vectors, strict=True)))

    async def recall(self, args: RecallInput, ctx: CallContext) -> RecallResult:
        await self._backfill(ctx.user)
        found = await self.memories.recall(
            user_id=ctx.user,
            query=args.query,
            subject=subject_of_query(args.query),
            embedding=await self._vector(args.query),
        )
        facts = [
            RecalledFact(**_fact(record).model_dump(), score=min(1.0, max(0.0, score / MAX_SCORE)))
            for record, score in found
        ]
        return RecallResult(facts=facts)

    async def forget(self, args: ForgetInput, ctx: CallContext) -> ForgetResult:
        gone = await self.memories.forget(
            user_id=ctx.user, query=args.query, subject=subject_of_query(args.query)
        )
        return ForgetResult(forgotten=[_fact(r) for r in gone])

    async def remembered_facts(self, args: MemoryListInput, ctx: CallContext) -> MemoryList:
        """The caller's own current facts: the call's user decides whose, never an argument."""
        facts = await memory_facts(self.services.database.sessionmaker, ctx.user, limit=args.limit)
        return MemoryList(
            facts=[
                MemoryFact(id=str(f.id), fact=f.content, subject=f.subject, created_at=f.created_at)
                for f in facts
            ]
        )

    async def describe(self, args: MemoryDescribeInput, ctx: CallContext) -> CallDescription:
        """What a forget would delete: the caller's own facts its words match now (the forget's own
        matching), never anyone else's. Other calls keep the card's generic words."""
        if args.tool != memory.FORGET.name:
            return CallDescription(text="")
        query = memory.FORGET.validate_arguments(args.arguments)
        assert isinstance(query, ForgetInput)
        gone = await self.memories.would_forget(
            user_id=ctx.user, query=query.query, subject=subject_of_query(query.query)
        )
        return CallDescription(text=forget_words(query.query, [record.content for record in gone]))


SHOWN = 3
"""How many facts an approval card names; the rest are counted."""


def forget_words(query: str, facts: list[str]) -> str:
    """ "delete the memory 'your editor is neovim'"; up to ``SHOWN`` facts, then "and N more"."""
    if not facts:
        return f"delete nothing: no remembered fact matches '{query}'"
    named = ", ".join(f"'{second_person(fact).rstrip('.')}'" for fact in facts[:SHOWN])
    more = f" and {len(facts) - SHOWN} more" if len(facts) > SHOWN else ""
    return f"delete the memor{'y' if len(facts) == 1 else 'ies'} {named}{more}"
