"""Knowledge tools: search the knowledge base, add to it, list its documents, ingest uploaded files."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from tools.builtin.base import Query, ToolInput, ToolOutput
from tools.definition import Risk, ToolDefinition
from tools.facts import PRIVATE

AGENT = "knowledge"

Content = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50_000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class KnowledgeSearchInput(ToolInput):
    """Search the knowledge base (full text and meaning)."""

    query: Query = Field(description="What to search for.")
    limit: int = Field(default=5, ge=1, le=50, description="How many hits to return at most (1..50).")


class KnowledgeAddInput(ToolInput):
    """Add a note or document to the knowledge base."""

    content: Annotated[Content, PRIVATE] = Field(description="The text to add (up to 50,000 characters).")
    title: Title | None = Field(default=None, description="An optional title for the entry.")


class KnowledgeListInput(ToolInput):
    """List the documents in the knowledge base."""

    limit: int = Field(default=50, ge=1, le=200, description="How many documents, newest first (1..200).")


class KnowledgeIngestInput(ToolInput):
    """Ingest one uploaded file that a front door staged for the knowledge agent."""

    id: uuid.UUID = Field(description="The staged upload's id (the web chat stages each file it receives).")


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


class KnowledgeDocument(ToolOutput):
    """A document of the knowledge base, as a listing shows it."""

    id: str = Field(description="The entry's id.")
    title: str = Field(description="The document's title.")
    source: str = Field(description="Where it came from: the file name, or who wrote the note.")
    created_at: datetime = Field(description="When it was added.")

    def summary(self) -> str:
        return f'"{self.title}" ({self.source})' if self.source != self.title else f'"{self.title}"'


class KnowledgeList(ToolOutput):
    """Documents in the knowledge base, newest first."""

    entries: list[KnowledgeDocument] = Field(default_factory=list, description="Documents, newest first.")

    def summary(self) -> str:
        if not self.entries:
            return "The knowledge base is empty: upload documents in the chat or add a note."
        count = len(self.entries)
        names = ", ".join(entry.summary() for entry in self.entries[:5])
        more = f" and {count - 5} more" if count > 5 else ""
        return f"{count} document{'s' if count > 1 else ''} in the knowledge base: {names}{more}."


class IngestedFile(ToolOutput):
    """What became of one file given to the knowledge base."""

    name: str = Field(description="The file's name as it was uploaded.")
    chunks: int = Field(default=0, ge=0, description="Passages stored (0 on error or when a duplicate).")
    duplicate: bool = Field(default=False, description="The same content was in the knowledge base already.")
    error: str | None = Field(default=None, description="One sentence saying why it was not stored.")

    def summary(self) -> str:
        if self.error:
            return self.error
        if self.duplicate:
            return f"{self.name} is in the knowledge base already."
        return f"Added {self.name} to the knowledge base as {_passages(self.chunks)}."


class KnowledgeIngestResult(ToolOutput):
    """The outcome of each file; one file's failure never stops the others."""

    files: list[IngestedFile] = Field(default_factory=list, description="One outcome per file, in order.")

    @property
    def stored(self) -> list[IngestedFile]:
        """The files that were added (not failed, not duplicates)."""
        return [f for f in self.files if f.error is None and not f.duplicate]

    def summary(self) -> str:
        stored, parts = self.stored, []
        if stored:
            chunks = sum(f.chunks for f in stored)
            names = ", ".join(f.name for f in stored)
            parts.append(
                f"Added {len(stored)} file{'s' if len(stored) > 1 else ''} ({names}) to the knowledge base "
                f"as {_passages(chunks)}."
            )
        duplicates = [f.name for f in self.files if f.duplicate]
        if duplicates:
            parts.append(f"Already there: {', '.join(duplicates)}.")
        errors = [f.error for f in self.files if f.error]
        if errors:
            parts.append("Not added: " + "; ".join(e.rstrip(".") for e in errors if e) + ".")
        return " ".join(parts) or "There were no files to add."


def _passages(count: int) -> str:
    return f"{count} passage{'s' if count != 1 else ''}"


def byte_size(count: int) -> str:
    """A file size for a sentence: "1.5 MB", "300 kB"."""
    return f"{count / 1e6:.1f} MB" if count >= 1_000_000 else f"{count / 1e3:.0f} kB"


def too_large(name: str, size: int, limit: int) -> str:
    """The sentence refusing a file over the size limit (the web chat says it before staging a file, the
    knowledge agent when it reads one)."""
    return f"{name}: {byte_size(size)} is over the {byte_size(limit)} limit per file"


SEARCH = ToolDefinition(
    name="knowledge_search",
    description="Search the knowledge base for notes and documents about a topic.",
    agent=AGENT,
    input_model=KnowledgeSearchInput,
    output_model=KnowledgeSearchResult,
    risk=Risk.READ,
    embeds=True,
)
ADD = ToolDefinition(
    name="knowledge_add",
    description="Add a note or a document to the knowledge base.",
    agent=AGENT,
    input_model=KnowledgeAddInput,
    output_model=KnowledgeAdded,
    risk=Risk.WRITE,
    embeds=True,
)
LIST = ToolDefinition(
    name="knowledge_list",
    description="List the documents in the knowledge base, newest first.",
    agent=AGENT,
    input_model=KnowledgeListInput,
    output_model=KnowledgeList,
    risk=Risk.READ,
)
INGEST = ToolDefinition(
    name="knowledge_ingest",
    description=(
        "Read an uploaded file (txt, md, pdf, docx, html) into the knowledge base. The file must have been "
        "staged by a front door that accepts uploads, such as the web chat; its id names it."
    ),
    agent=AGENT,
    input_model=KnowledgeIngestInput,
    output_model=KnowledgeIngestResult,
    risk=Risk.WRITE,
    embeds=True,
)

TOOLS = (SEARCH, ADD, LIST, INGEST)
