"""Notion tools: import configured data sources and pages into the knowledge base, write answers and notes
back as new pages or appended blocks."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from tools.builtin.base import ToolInput, ToolOutput
from tools.definition import Risk, ToolDefinition
from tools.facts import PRIVATE

AGENT = "notion"

NotionRef = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=300, pattern=r"^[A-Za-z0-9:/._?=&%#\-]+$"
    ),
]
"""A Notion page or data source: its id (with or without dashes) or its URL."""
Content = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200_000), PRIVATE]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class NotionSyncInput(ToolInput):
    """Import the configured Notion data sources and pages into the knowledge base."""

    full: bool = Field(
        default=False,
        description="Also compare every page id with Notion now, so deleted and trashed pages leave the "
        "knowledge base (otherwise done periodically).",
    )


class NotionCreatePageInput(ToolInput):
    """Write text to Notion as a new page."""

    parent: NotionRef | None = Field(
        default=None,
        description="The parent page or data source (id or URL); default: the first configured data "
        "source, else the first configured page.",
    )
    title: Title | None = Field(default=None, description="The page's title; default: its first words.")
    content: Content = Field(
        description="The text; '#' headings, '-' and '1.' list items and ``` code fences become blocks."
    )


class NotionAppendInput(ToolInput):
    """Append text to the end of a Notion page."""

    page: NotionRef = Field(description="The page (id or URL).")
    content: Content = Field(
        description="The text; '#' headings, '-' and '1.' list items and ``` code fences become blocks."
    )


class NotionSourceResult(ToolOutput):
    """What one sync did to one data source or page."""

    source: str = Field(description="The data source or page id.")
    kind: str = Field(description="'data_source' or 'page'.")
    pages: int = Field(ge=0, description="Pages of this source now in the knowledge base.")
    imported: int = Field(default=0, ge=0, description="Pages imported or re-imported (new or changed).")
    unchanged: int = Field(default=0, ge=0, description="Pages seen again with the content already stored.")
    removed: int = Field(default=0, ge=0, description="Pages removed (deleted, trashed, no longer shared).")
    reconciled: bool = Field(default=False, description="Every page id was compared with Notion.")
    errors: list[str] = Field(default_factory=list, description="What went wrong, one sentence each.")

    def summary(self) -> str:
        text = (
            f"{self.kind.replace('_', ' ')} {self.source}: {self.imported} imported, "
            f"{self.removed} removed, {self.pages} in the knowledge base"
        )
        return text + (
            f" ({len(self.errors)} error{'s' if len(self.errors) > 1 else ''})" if self.errors else ""
        )


class NotionSyncResult(ToolOutput):
    """The outcome per configured source."""

    sources: list[NotionSourceResult] = Field(default_factory=list, description="One per source, in order.")
    finished: bool = Field(
        default=True, description="False when the sync outlasted the call and goes on in the background."
    )

    def summary(self) -> str:
        if not self.finished:
            return "The Notion sync is still running; it goes on in the background (see `kommandant doctor`)."
        if not self.sources:
            return "No Notion data sources or pages are configured (KOMMANDANT_NOTION_DATA_SOURCES, …_PAGES)."
        imported = sum(s.imported for s in self.sources)
        removed = sum(s.removed for s in self.sources)
        pages = sum(s.pages for s in self.sources)
        text = (
            f"Synced Notion: {imported} page{'s' if imported != 1 else ''} imported, {removed} removed; "
            f"{pages} Notion page{'s' if pages != 1 else ''} in the knowledge base."
        )
        errors = [e for s in self.sources for e in s.errors]
        if errors:
            text += f" {len(errors)} problem{'s' if len(errors) > 1 else ''}: " + "; ".join(errors[:3])
            text = text.rstrip(".") + "."
        return text


class NotionPageWritten(ToolOutput):
    """A page created or appended to."""

    page_id: str = Field(description="The page written to (the new page when a conflict made one).")
    url: str = Field(description="The page's URL.")
    title: str = Field(default="", description="The page's title.")
    blocks: int = Field(ge=0, description="Blocks written.")
    requests: int = Field(ge=1, description="API requests it took (100 blocks per request at most).")
    created: bool = Field(default=False, description="A new page was made.")
    conflict: str | None = Field(
        default=None, description="Why the text went to a new page instead (the page changed in Notion)."
    )

    def summary(self) -> str:
        name = f'"{self.title}"' if self.title else "the page"
        if self.conflict:
            return f"{self.conflict} Your text was saved as a new page {name}: {self.url}"
        verb = "Created" if self.created else "Appended to"
        return f"{verb} {name} in Notion ({self.blocks} block{'s' if self.blocks != 1 else ''}): {self.url}"


SYNC = ToolDefinition(
    name="notion_sync",
    description="Import the configured Notion data sources and pages into the knowledge base (changed "
    "pages only; full=true also drops pages deleted in Notion).",
    agent=AGENT,
    input_model=NotionSyncInput,
    output_model=NotionSyncResult,
    risk=Risk.WRITE,
    embeds=True,
    repeatable=True,  # a sync imports what changed since the last one: run again, it finds nothing new
)
CREATE_PAGE = ToolDefinition(
    name="notion_create_page",
    description="Write text (an answer, a note) to Notion as a new page under a page or data source.",
    agent=AGENT,
    input_model=NotionCreatePageInput,
    output_model=NotionPageWritten,
    risk=Risk.WRITE,
)
APPEND = ToolDefinition(
    name="notion_append",
    description="Append text (an answer, a note) to the end of a Notion page.",
    agent=AGENT,
    input_model=NotionAppendInput,
    output_model=NotionPageWritten,
    risk=Risk.WRITE,
)

TOOLS = (SYNC, CREATE_PAGE, APPEND)
