"""Notion -> knowledge base: import the pages of configured data sources and pages, incrementally.

Incremental by ``last_edited_time``. Notion rounds it down to the minute, so each query starts
``OVERLAP`` before the newest time already imported, and a page seen again is de-duplicated: if the
stored version was imported well after its edit minute closed, it is the same; otherwise its blocks are
fetched again and compared by content hash (an edit in the same minute changes the hash, not the time).

Pages deleted or moved to trash just vanish from queries, so every ``notion_reconcile_hours`` (and on
``full``) the whole id list of a data source is read and the pages no longer in it leave the knowledge
base. Pages configured one by one are retrieved on every sync: a trashed or unshared one is removed then.

Notion wins for imported content: a changed page replaces its knowledge entry, whatever happened to the
entry locally. Local text meant for a page that changed in Notion since the last sync is written back as
a new page (``writeback``), never merged into it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.knowledge_base import KnowledgeBase, content_hash
from agents.notion.blocks import page_document, page_title
from agents.notion.client import NotionApi, NotionError, NotionNotFound, notion_id
from settings import Settings
from storage.notion import NotionRepository, PageRecord
from tools.builtin.notion import NotionSourceResult, NotionSyncResult

__all__ = ["OVERLAP", "SETTLED", "NotionSync", "Progress", "page_tree", "parse_time"]

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=2)
"""How far each incremental query reaches back before the newest edit time imported."""
SETTLED = timedelta(minutes=2)
"""A page imported this long after its (minute-rounded) edit time was imported in its final state."""
NO_DESCENT = frozenset({"child_page", "child_database"})
"""Blocks whose children are pages or databases of their own, not text of this page."""
USER = "notion"
"""Who the knowledge base records as having added imported pages."""

Progress = Callable[[str, int, str], Awaitable[None]]
"""``progress(source, done, page title)``, awaited after each page handled."""


def parse_time(value: str) -> datetime:
    """A Notion ISO 8601 timestamp as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


async def page_tree(api: NotionApi, block_id: str) -> list[dict[str, Any]]:
    """Every block of a page, each block's children (recursively) under ``"children"``."""
    blocks = []
    async for block in api.children(block_id):
        if block.get("has_children") and block.get("type") not in NO_DESCENT:
            block = {**block, "children": await page_tree(api, str(block["id"]))}
        blocks.append(block)
    return blocks


@dataclass
class _Run:
    """Counts and errors of one source's sync."""

    imported: int = 0
    unchanged: int = 0
    removed: int = 0
    done: int = 0
    cursor: datetime | None = None
    errors: list[str] = field(default_factory=list)

    def saw(self, edited: datetime) -> None:
        if self.cursor is None or edited > self.cursor:
            self.cursor = edited


class NotionSync:
    """One sync over every configured source; each source succeeds or fails alone."""

    def __init__(
        self,
        api: NotionApi,
        knowledge: KnowledgeBase,
        repository: NotionRepository,
        settings: Settings,
        progress: Progress | None = None,
    ) -> None:
        self.api = api
        self.knowledge = knowledge
        self.repository = repository
        self.settings = settings
        self.progress = progress

    async def run(self, *, full: bool = False) -> NotionSyncResult:
        """Sync the configured data sources, then the configured pages."""
        results = [
            await self.data_source(notion_id(ref), full=full) for ref in self.settings.notion_data_sources
        ]
        results += [await self.single_page(notion_id(ref)) for ref in self.settings.notion_pages]
        return NotionSyncResult(sources=results)

    # -- data sources -----------------------------------------------------------------------------------
    async def data_source(self, source_id: str, *, full: bool = False) -> NotionSourceResult:
        """Import what changed in one data source; reconcile every id when it is due or ``full``."""
        status = await self.repository.source(source_id, "data_source")
        known = await self.repository.pages_of(source_id)
        now = datetime.now(UTC)
        reconcile = (
            full
            or status.reconciled_at is None
            or now - status.reconciled_at >= timedelta(hours=self.settings.notion_reconcile_hours)
        )
        body: dict[str, Any] = {"sorts": [{"timestamp": "last_edited_time", "direction": "ascending"}]}
        if not reconcile and status.cursor is not None:
            since = (status.cursor - OVERLAP).isoformat().replace("+00:00", "Z")
            body["filter"] = {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": since}}
        run, seen = _Run(cursor=status.cursor), set()
        try:
            async for page in self.api.query_data_source(source_id, body):
                if page.get("object") != "page":
                    continue  # a query can also list data sources (wikis)
                seen.add(str(page["id"]))
                await self._page(source_id, page, known.get(str(page["id"])), run)
        except NotionError as err:
            run.errors.append(str(err))
            reconcile = False  # a partial id list must never remove pages
        if reconcile:
            for page_id in set(known) - seen:
                if await self.repository.remove_page(page_id):
                    run.removed += 1
        return await self._finish(source_id, "data_source", run, reconcile)

    async def _page(
        self, source_id: str, page: Mapping[str, Any], stored: PageRecord | None, run: _Run
    ) -> None:
        """Import, skip or remove one page of a query or retrieve; a failure is this page's error."""
        page_id = str(page["id"])
        title = page_title(page)
        try:
            if page.get("in_trash") or page.get("archived"):
                if stored is not None and await self.repository.remove_page(page_id):
                    run.removed += 1
                return
            edited = parse_time(str(page["last_edited_time"]))
            run.saw(edited)
            if (
                stored is not None
                and edited <= stored.last_edited_time
                and (stored.synced_at >= stored.last_edited_time + SETTLED)
            ):
                run.unchanged += 1
                return
            document = page_document(page, await page_tree(self.api, page_id))
            digest = content_hash(document)
            if stored is not None and digest == stored.content_hash:
                await self.repository.touch_page(page_id, max(edited, stored.last_edited_time))
                run.unchanged += 1
                return
            entry_id = None
            if any(block.text.strip() for block in document.blocks):
                entry, duplicate = await self.knowledge.add(document, source=str(page.get("url")), user=USER)
                # Identical text stored already (another page, a note): not this page's to delete later.
                entry_id = None if duplicate and (stored is None or stored.entry_id != entry.id) else entry.id
            await self.repository.record_page(
                page_id=page_id,
                source_id=source_id,
                url=str(page.get("url") or ""),
                title=title,
                last_edited_time=edited,
                content_hash=digest,
                entry_id=entry_id,
            )
            run.imported += 1
        except NotionError as err:
            run.errors.append(f"{title}: {err}")
        finally:
            run.done += 1
            if self.progress is not None:
                await self.progress(source_id, run.done, title)

    # -- single pages -----------------------------------------------------------------------------------
    async def single_page(self, page_id: str) -> NotionSourceResult:
        """Import one configured page when it changed; remove it when trashed or gone."""
        await self.repository.source(page_id, "page")
        stored = await self.repository.page(page_id)
        run = _Run()
        try:
            page = await self.api.page(page_id)
        except NotionNotFound:
            if stored is not None and await self.repository.remove_page(page_id):
                run.removed += 1
            run.errors.append(f"page {page_id} is gone or no longer shared with the integration")
        except NotionError as err:
            run.errors.append(str(err))
        else:
            await self._page(page_id, page, stored, run)
        return await self._finish(page_id, "page", run, reconciled=True)

    async def _finish(self, source_id: str, kind: str, run: _Run, reconciled: bool) -> NotionSourceResult:
        status = await self.repository.finish_run(
            source_id,
            cursor=run.cursor,
            imported=run.imported,
            removed=run.removed,
            conflicts=0,
            errors=run.errors,
            reconciled=reconciled,
        )
        for error in run.errors:
            log.warning("Notion sync of %s: %s", source_id, error)
        return NotionSourceResult(
            source=source_id,
            kind=kind,
            pages=status.pages,
            imported=run.imported,
            unchanged=run.unchanged,
            removed=run.removed,
            reconciled=reconciled,
            errors=run.errors,
        )
