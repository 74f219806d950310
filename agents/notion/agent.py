"""The notion agent: sync Notion into the knowledge base, write answers and notes back to Notion.

A sync runs as one task at a time per process (the periodic one and a tool call share it). A tool call
waits for it until shortly before its deadline and then answers that the sync goes on in the background;
``notion.sync.progress`` and ``notion.sync.finished`` events on the bus tell whoever listens (the CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from agents.base import Agent, CallContext
from agents.errors import AgentError
from agents.knowledge_base import KnowledgeBase, as_agent_errors
from agents.notion.blocks import page_title
from agents.notion.client import NotionApi, notion_id
from agents.notion.sync import NotionSync, parse_time
from agents.notion.writeback import MAX_BLOCKS, batches, rich_text, text_blocks
from agents.services import Services
from storage.notion import NotionRepository
from tools.builtin import notion as notion_tools
from tools.builtin.notion import (
    NotionAppendInput,
    NotionCreatePageInput,
    NotionPageWritten,
    NotionSyncInput,
    NotionSyncResult,
)

__all__ = ["PROGRESS_TOPIC", "SYNC_FINISHED_TOPIC", "NotionAgent"]

log = logging.getLogger(__name__)

PROGRESS_TOPIC = "notion.sync.progress"
"""Bus event after each page a sync handled: ``{"source", "done", "title"}``."""
SYNC_FINISHED_TOPIC = "notion.sync.finished"
"""Bus event when a sync ends: ``{"result": NotionSyncResult, "error": str | None}``."""
ANSWER_MARGIN = 0.8
"""Share of the call timeout a sync call waits before answering that the sync goes on in the background."""


class NotionAgent(Agent):
    name = notion_tools.AGENT
    description = "Imports Notion pages into the knowledge base and writes notes back to Notion."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.repository = NotionRepository(services.database.sessionmaker)
        self._knowledge: KnowledgeBase | None = None
        self._running: asyncio.Task[NotionSyncResult] | None = None
        self._loop: asyncio.Task[None] | None = None
        self.register(notion_tools.SYNC, self.sync)
        self.register(notion_tools.CREATE_PAGE, self.create_page)
        self.register(notion_tools.APPEND, self.append)

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Sync every ``notion_sync_interval`` seconds when Notion is configured."""
        settings = self.services.settings
        if settings.notion_token is not None and settings.notion_sync_interval > 0:
            self._loop = asyncio.create_task(
                self._periodic(settings.notion_sync_interval), name="notion-sync"
            )

    async def stop(self) -> None:
        for task in (self._loop, self._running):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._loop = self._running = None

    async def _periodic(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sync_task(full=False)
            except Exception:  # one failed sync must not end the loop; the next one retries
                log.warning("periodic Notion sync failed", exc_info=True)

    # -- sync ---------------------------------------------------------------------------------------------
    def _api(self) -> NotionApi:
        settings = self.services.settings
        if settings.notion_token is None:
            raise AgentError("Notion is not set up: set KOMMANDANT_NOTION_TOKEN (see docs/notion.md).")
        return NotionApi(
            settings.notion_token.get_secret_value(),
            settings.notion_base_url,
            max_wait=settings.notion_max_wait,
        )

    def _sync_task(self, *, full: bool) -> asyncio.Task[NotionSyncResult]:
        """The sync under way, or a new one: never two at once in this process."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run_sync(full), name="notion-sync-run")
        return self._running

    async def _run_sync(self, full: bool) -> NotionSyncResult:
        bus = self.services.bus
        if self._knowledge is None:
            self._knowledge = KnowledgeBase(self.services)

        async def progress(source: str, done: int, title: str) -> None:
            await bus.publish(PROGRESS_TOPIC, {"source": source, "done": done, "title": title})

        error: str | None = None
        result = NotionSyncResult()
        try:
            async with self.repository.sync_lock() as mine:
                if not mine:  # another replica syncs now: its result is as good as ours
                    raise AgentError(
                        "Another Kommandant process is syncing Notion right now; try again soon."
                    )
                async with self._api() as api, as_agent_errors():
                    result = await NotionSync(
                        api, self._knowledge, self.repository, self.services.settings, progress
                    ).run(full=full)
            return result
        except AgentError as err:
            error = str(err)
            raise
        finally:
            with contextlib.suppress(Exception):
                await bus.publish(
                    SYNC_FINISHED_TOPIC, {"result": result.model_dump(mode="json"), "error": error}
                )

    async def sync(self, args: NotionSyncInput, ctx: CallContext) -> NotionSyncResult:
        """Run a sync (or join the one under way) and answer with its outcome, or, when it outlasts the
        call, with what it did so far: it finishes in the background."""
        task = self._sync_task(full=args.full)
        budget = self.services.settings.call_timeout * ANSWER_MARGIN
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=budget)
        except TimeoutError:
            return NotionSyncResult(finished=False)

    # -- write-back ---------------------------------------------------------------------------------------
    def _default_parent(self) -> str:
        settings = self.services.settings
        for ref in (*settings.notion_data_sources, *settings.notion_pages):
            return ref
        raise AgentError("Say which Notion page to write under: no data source or page is configured.")

    async def _parent(self, api: NotionApi, ref: str) -> tuple[dict[str, str], str | None]:
        """The ``parent`` of a new page and the name of its title property (None: a page parent)."""
        target = notion_id(ref)
        configured = {notion_id(r) for r in self.services.settings.notion_data_sources}
        if target in configured or ref.startswith("data_source:"):
            target = notion_id(ref.removeprefix("data_source:"))
            source = await api.data_source(target)
            title_prop = next(
                (
                    name
                    for name, prop in (source.get("properties") or {}).items()
                    if prop.get("type") == "title"
                ),
                "Name",
            )
            return {"type": "data_source_id", "data_source_id": target}, title_prop
        return {"type": "page_id", "page_id": target}, None

    async def _write_page(
        self, api: NotionApi, parent: dict[str, str], title_prop: str | None, title: str, content: str
    ) -> NotionPageWritten:
        """Create a page with the first 100 blocks and append the rest 100 at a time."""
        blocks = text_blocks(content)
        first, rest = blocks[:MAX_BLOCKS], blocks[MAX_BLOCKS:]
        prop = title_prop or "title"
        page = await api.create_page(
            {"parent": parent, "properties": {prop: {"title": rich_text(title)}}, "children": first}
        )
        requests = 1
        for batch in batches(rest):
            await api.append(str(page["id"]), batch)
            requests += 1
        return NotionPageWritten(
            page_id=str(page["id"]),
            url=str(page.get("url") or ""),
            title=title,
            blocks=len(blocks),
            requests=requests,
            created=True,
        )

    async def create_page(self, args: NotionCreatePageInput, ctx: CallContext) -> NotionPageWritten:
        """Write ``content`` as a new page under ``parent``."""
        title = args.title or " ".join(args.content.split()[:8])[:200]
        async with self._api() as api:
            parent, title_prop = await self._parent(api, args.parent or self._default_parent())
            return await self._write_page(api, parent, title_prop, title, args.content)

    async def append(self, args: NotionAppendInput, ctx: CallContext) -> NotionPageWritten:
        """Append ``content`` to a page; when the page changed in Notion since it was last imported, the
        text becomes a new page under it instead and the conflict is recorded (Notion wins)."""
        page_id = notion_id(args.page)
        async with self._api() as api:
            page = await api.page(page_id)
            title = page_title(page)
            stored = await self.repository.page(page_id)
            edited = parse_time(str(page["last_edited_time"]))
            if stored is not None and edited > stored.last_edited_time:
                return await self._conflict(api, page_id, title, stored.source_id, args.content)
            blocks = text_blocks(args.content)
            requests = 0
            for batch in batches(blocks):
                await api.append(page_id, batch)
                requests += 1
            if stored is not None:
                # Our own edit is not a conflict next time; the next sync still imports the new text
                # (its content hash differs from the one stored).
                after = await api.page(page_id)
                await self.repository.touch_page(page_id, parse_time(str(after["last_edited_time"])))
        return NotionPageWritten(
            page_id=page_id,
            url=str(page.get("url") or ""),
            title=title,
            blocks=len(blocks),
            requests=requests,
        )

    async def _conflict(
        self, api: NotionApi, page_id: str, title: str, source_id: str, content: str
    ) -> NotionPageWritten:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        message = f'"{title}" changed in Notion since the last sync; Notion\'s version wins.'
        written = await self._write_page(
            api,
            {"type": "page_id", "page_id": page_id},
            None,
            f"{title}: note from Kommandant {stamp}",
            content,
        )
        await self.repository.add_conflict(source_id, f"{message} The note went to {written.url}")
        log.info("Notion conflict on %s: note written as a new page %s", page_id, written.page_id)
        return written.model_copy(update={"conflict": message})
