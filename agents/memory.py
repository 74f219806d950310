"""The memory agent: remember facts (a newer fact about a subject supersedes the older), recall, forget."""

from __future__ import annotations

import re

from agents.base import Agent, CallContext
from agents.services import Services
from storage.memory import MemoryRepository
from storage.records import MemoryRecord
from tools.builtin.memory import (
    ForgetInput,
    ForgetResult,
    MemoryFact,
    RecalledFact,
    RecallInput,
    RecallResult,
    RememberInput,
    RememberResult,
)

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


def subject_of_fact(fact: str) -> str | None:
    """What a fact is about: "my editor is neovim" -> "editor"; None when there is no "X is Y" shape."""
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


class MemoryAgent(Agent):
    name = "memory"
    description = "Remembers facts people tell it and recalls them."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.memories = MemoryRepository(services.database.sessionmaker)
        self.register("memory_remember", self.remember)
        self.register("memory_recall", self.recall)
        self.register("memory_forget", self.forget)

    async def remember(self, args: RememberInput, ctx: CallContext) -> RememberResult:
        record, superseded = await self.memories.remember(
            user_id=ctx.user, content=args.fact, subject=subject_of_fact(args.fact)
        )
        return RememberResult(fact=_fact(record), superseded=[_fact(s) for s in superseded])

    async def recall(self, args: RecallInput, ctx: CallContext) -> RecallResult:
        found = await self.memories.recall(
            user_id=ctx.user, query=args.query, subject=subject_of_query(args.query)
        )
        facts = [
            RecalledFact(**_fact(record).model_dump(), score=min(1.0, max(0.0, score / 2.5)))
            for record, score in found
        ]
        return RecallResult(facts=facts)

    async def forget(self, args: ForgetInput, ctx: CallContext) -> ForgetResult:
        gone = await self.memories.forget(
            user_id=ctx.user, query=args.query, subject=subject_of_query(args.query)
        )
        return ForgetResult(forgotten=[_fact(r) for r in gone])
