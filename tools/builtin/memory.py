"""Memory tools: remember a fact, recall facts, forget facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from tools.builtin.base import Query, ShortText, ToolInput, ToolOutput, second_person, sentence
from tools.builtin.system import DescribeInput, describe_tool
from tools.definition import Risk, ToolDefinition
from tools.facts import PRIVATE

AGENT = "memory"


class RememberInput(ToolInput):
    """Store one fact about the person or the world."""

    fact: Annotated[ShortText, PRIVATE] = Field(
        description="The fact to remember, in the person's words, e.g. 'my editor is neovim'."
    )


class RecallInput(ToolInput):
    """Look up remembered facts."""

    query: Query = Field(description="What to recall, e.g. 'my editor' or 'where the salt is'.")


class ForgetInput(ToolInput):
    """Forget the remembered facts that match a query."""

    query: Query = Field(description="Which facts to forget, e.g. 'my editor'.")


class MemoryListInput(ToolInput):
    """List the facts remembered about the caller."""

    limit: int = Field(default=50, ge=1, le=200, description="How many facts, newest first (1..200).")


class MemoryDescribeInput(DescribeInput):
    """Ask what a memory call would do; its arguments say what a person keeps private (what to forget)."""

    arguments: Annotated[dict[str, Any], PRIVATE] = Field(
        default_factory=dict, description="The arguments it would run with."
    )


class MemoryFact(ToolOutput):
    """One remembered fact."""

    id: str = Field(description="The fact's id.")
    fact: str = Field(description="The fact as it was told.")
    subject: str | None = Field(default=None, description="What the fact is about, e.g. 'editor', if known.")
    created_at: datetime = Field(description="When the fact was remembered.")

    def summary(self) -> str:
        return sentence(second_person(self.fact))


class RememberResult(ToolOutput):
    """The stored fact and the older facts it replaced."""

    fact: MemoryFact = Field(description="The fact as stored.")
    superseded: list[MemoryFact] = Field(
        default_factory=list, description="Older facts about the same subject that this one replaces."
    )

    def summary(self) -> str:
        return f"Got it — I'll remember that {second_person(self.fact.fact).rstrip('.')}."


class RecalledFact(MemoryFact):
    """A remembered fact with how well it matches the query."""

    score: float = Field(ge=0.0, le=1.0, description="Relevance to the query, 0..1 (1 is best).")


class RecallResult(ToolOutput):
    """Facts that match a query, best first."""

    facts: list[RecalledFact] = Field(default_factory=list, description="Matching facts, best first.")

    def summary(self) -> str:
        if not self.facts:
            return "I don't remember anything about that."
        return self.facts[0].summary()


class ForgetResult(ToolOutput):
    """Facts that were forgotten."""

    forgotten: list[MemoryFact] = Field(default_factory=list, description="The facts that were deleted.")

    def summary(self) -> str:
        if not self.forgotten:
            return "I had nothing to forget about that."
        if len(self.forgotten) == 1:
            return f"Forgotten: {second_person(self.forgotten[0].fact).rstrip('.')}."
        return f"Forgot {len(self.forgotten)} facts."


class MemoryList(ToolOutput):
    """The facts remembered about the caller (never anyone else's), newest first."""

    facts: list[MemoryFact] = Field(default_factory=list, description="Current facts, newest first.")

    def summary(self) -> str:
        if not self.facts:
            return "I don't remember anything about you yet."
        count = len(self.facts)
        shown = " ".join(fact.summary() for fact in self.facts[:5])
        more = f" (and {count - 5} more)" if count > 5 else ""
        return f"I remember {count} fact{'s' if count > 1 else ''} about you: {shown}{more}"


REMEMBER = ToolDefinition(
    name="memory_remember",
    description="Remember a fact the person tells you (preferences, names, where things are).",
    agent=AGENT,
    input_model=RememberInput,
    output_model=RememberResult,
    risk=Risk.WRITE,
    embeds=True,
    repeatable=True,
)
RECALL = ToolDefinition(
    name="memory_recall",
    description="Recall remembered facts that answer a question or match a query.",
    agent=AGENT,
    input_model=RecallInput,
    output_model=RecallResult,
    risk=Risk.READ,
    embeds=True,
)
FORGET = ToolDefinition(
    name="memory_forget",
    description="Forget (delete) remembered facts that match a query.",
    agent=AGENT,
    input_model=ForgetInput,
    output_model=ForgetResult,
    risk=Risk.DANGEROUS,
)

LIST = ToolDefinition(
    name="memory_list",
    description="List the facts remembered about the person asking, newest first.",
    agent=AGENT,
    input_model=MemoryListInput,
    output_model=MemoryList,
    risk=Risk.READ,
    private_result=True,
)

DESCRIBE = replace(describe_tool(AGENT), input_model=MemoryDescribeInput, private_result=True)
"""What a memory call would do, for an approval card: it names remembered facts, so it is private."""

TOOLS = (REMEMBER, RECALL, LIST, FORGET, DESCRIBE)
