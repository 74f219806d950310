"""Knowledge tools: search the knowledge base and add to it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from tools.builtin.base import Query, ToolInput, ToolOutput
from tools.definition import Risk, ToolDefinition

AGENT = "knowledge"

Content = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50_000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class KnowledgeSearchInput(ToolInput):
    """Search the knowledge base (full text and meaning)."""

    query: Query = Field(description="What to search for.")
    limit: int = Field(default=5, ge=1, le=50, description="How many hits to return at most (1..50).")


class KnowledgeAddInput(ToolInput):
    """Add a note or document to the knowledge base."""

    content: Content = Field(description="The text to add (up to 50,000 characters).")
    title: Title | None = Field(default=None, description="An optional title for the entry.")


class KnowledgeHit(ToolOutput):
    """One search hit."""

    id: str = Field(description="The entry's id.")
    title: str | None = Field(default=None, description="The entry's title, if it has one.")
    snippet: str = Field(description="The matching passage.")
    score: float = Field(ge=0.0, le=1.0, description="Relevance, 0..1 (1 is best).")
    source: str | None = Field(default=None, description="Where the entry came from (file name, note).")
    page: int | None = Field(default=None, description="The page of the passage (PDFs).")
    section: str | None = Field(default=None, description="The heading the passage sits under.")

    def citation(self) -> str:
        """Where the passage is: title, page, section."""
        parts = [self.title or self.source or "a note"]
        if self.page is not None:
            parts.append(f"p. {self.page}")
        if self.section and self.section != self.title:
            parts.append(f"§ {self.section}")
        return ", ".join(parts)

    def summary(self) -> str:
        return f"{self.snippet} ({self.citation()})"


class KnowledgeSearchResult(ToolOutput):
    """Search hits, best first."""

    query: str = Field(description="The query that was searched.")
    hits: list[KnowledgeHit] = Field(default_factory=list, description="Hits, best first.")

    def summary(self) -> str:
        if not self.hits:
            return f"I found nothing about {self.query}."
        more = len(self.hits) - 1
        tail = f" (+{more} more passage{'s' if more > 1 else ''})" if more else ""
        return self.hits[0].summary() + tail


class KnowledgeEntry(ToolOutput):
    """An entry of the knowledge base."""

    id: str = Field(description="The entry's id.")
    title: str | None = Field(default=None, description="The entry's title, if any.")
    chunks: int = Field(ge=0, description="How many searchable chunks the entry was split into.")
    created_at: datetime = Field(description="When the entry was added.")

    def summary(self) -> str:
        name = f'"{self.title}"' if self.title else "the note"
        return f"Added {name} to the knowledge base."


class KnowledgeAdded(ToolOutput):
    """The entry that was added."""

    entry: KnowledgeEntry = Field(description="The new entry (or the existing one with the same content).")
    duplicate: bool = Field(default=False, description="True when the same content was stored already.")

    def summary(self) -> str:
        if self.duplicate:
            name = f'"{self.entry.title}"' if self.entry.title else "That note"
            return f"{name} is in the knowledge base already (same content)."
        return self.entry.summary()


TOOLS = (
    ToolDefinition(
        name="knowledge_search",
        description="Search the knowledge base for notes and documents about a topic.",
        agent=AGENT,
        input_model=KnowledgeSearchInput,
        output_model=KnowledgeSearchResult,
        risk=Risk.READ,
    ),
    ToolDefinition(
        name="knowledge_add",
        description="Add a note or a document to the knowledge base.",
        agent=AGENT,
        input_model=KnowledgeAddInput,
        output_model=KnowledgeAdded,
        risk=Risk.WRITE,
    ),
)
