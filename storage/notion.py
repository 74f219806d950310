"""Notion sync state: per configured source (cursor, last run, counts, errors) and per imported page (its
knowledge entry and the version imported). The knowledge entries themselves live in ``storage.knowledge``;
this module only links them to pages and removes the entry of a page that left Notion."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import KnowledgeEntry, NotionPage, NotionSource

__all__ = ["MAX_ERRORS", "NotionRepository", "NotionSourceStatus", "PageRecord"]

MAX_ERRORS = 20
"""Errors kept per source (the newest): enough to see a pattern, never an unbounded column."""
SYNC_LOCK = 0x4E6F74696F6E  # "Notion": the advisory lock key of a sync


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A page as last imported."""

    page_id: str
    source_id: str
    url: str
    title: str
    last_edited_time: datetime
    content_hash: str
    entry_id: uuid.UUID | None
    synced_at: datetime


@dataclass(frozen=True, slots=True)
class NotionSourceStatus:
    """How the syncs of one data source or page went: what ``doctor`` and the sync tool show."""

    source_id: str
    kind: str
    cursor: datetime | None
    last_run_at: datetime | None
    last_ok_at: datetime | None
    reconciled_at: datetime | None
    pages: int
    imported: int
    removed: int
    conflicts: int
    errors: list[str]


def _page(row: NotionPage) -> PageRecord:
    return PageRecord(
        page_id=row.page_id,
        source_id=row.source_id,
        url=row.url,
        title=row.title,
        last_edited_time=row.last_edited_time,
        content_hash=row.content_hash,
        entry_id=row.entry_id,
        synced_at=row.synced_at,
    )


def _status(row: NotionSource) -> NotionSourceStatus:
    return NotionSourceStatus(
        source_id=row.source_id,
        kind=row.kind,
        cursor=row.cursor,
        last_run_at=row.last_run_at,
        last_ok_at=row.last_ok_at,
        reconciled_at=row.reconciled_at,
        pages=row.pages,
        imported=row.imported,
        removed=row.removed,
        conflicts=row.conflicts,
        errors=[str(e) for e in row.errors or []],
    )


class NotionRepository:
    """Reads and writes the sync state; every method is one transaction."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @asynccontextmanager
    async def sync_lock(self) -> AsyncIterator[bool]:
        """Hold the sync's advisory lock while the block runs: True if this process got it, False if
        another process (a second replica of the notion agent) is syncing now. No transaction stays open
        while the lock is held (autocommit), only the connection."""
        async with self._sessionmaker() as session:
            conn = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": SYNC_LOCK}))
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SYNC_LOCK})

    async def source(self, source_id: str, kind: str) -> NotionSourceStatus:
        """The status of ``source_id``, created (never synced) on first use."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                insert(NotionSource)
                .values(source_id=source_id, kind=kind, errors=[])
                .on_conflict_do_nothing(index_elements=["source_id"])
            )
            row = await session.get(NotionSource, source_id)
            assert row is not None
            return _status(row)

    async def statuses(self) -> list[NotionSourceStatus]:
        """Every source synced at least once, by id."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(select(NotionSource).order_by(NotionSource.source_id))
            return [_status(row) for row in rows]

    async def page(self, page_id: str) -> PageRecord | None:
        async with self._sessionmaker() as session:
            row = await session.get(NotionPage, page_id)
            return _page(row) if row else None

    async def pages_of(self, source_id: str) -> dict[str, PageRecord]:
        """The pages imported from ``source_id`` by page id."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(select(NotionPage).where(NotionPage.source_id == source_id))
            return {row.page_id: _page(row) for row in rows}

    async def record_page(
        self,
        *,
        page_id: str,
        source_id: str,
        url: str,
        title: str,
        last_edited_time: datetime,
        content_hash: str,
        entry_id: uuid.UUID | None,
    ) -> None:
        """Link ``page_id`` to its new knowledge entry; the entry of the version it replaces is deleted
        in the same transaction, so search never shows two versions of a page nor none."""
        values: dict[str, Any] = {
            "source_id": source_id,
            "url": url[:2000],
            "title": title[:500],
            "last_edited_time": last_edited_time,
            "content_hash": content_hash,
            "entry_id": entry_id,
            "synced_at": datetime.now(UTC),
        }
        async with self._sessionmaker() as session, session.begin():
            old = await session.get(NotionPage, page_id, with_for_update=True)
            stale = old.entry_id if old is not None else None
            await session.execute(
                insert(NotionPage)
                .values(page_id=page_id, **values)
                .on_conflict_do_update(index_elements=["page_id"], set_=values)
            )
            if stale is not None and stale != entry_id:
                await session.execute(delete(KnowledgeEntry).where(KnowledgeEntry.id == stale))

    async def touch_page(self, page_id: str, last_edited_time: datetime) -> None:
        """The page was seen again with the same content: remember its newer edit time only."""
        async with self._sessionmaker() as session, session.begin():
            row = await session.get(NotionPage, page_id)
            if row is not None:
                row.last_edited_time = last_edited_time
                row.synced_at = datetime.now(UTC)

    async def remove_page(self, page_id: str) -> bool:
        """Forget a page that left Notion (deleted, trashed, unshared) and delete its knowledge entry."""
        async with self._sessionmaker() as session, session.begin():
            row = await session.get(NotionPage, page_id)
            if row is None:
                return False
            if row.entry_id is not None:
                await session.execute(delete(KnowledgeEntry).where(KnowledgeEntry.id == row.entry_id))
            await session.delete(row)
            return True

    async def finish_run(
        self,
        source_id: str,
        *,
        cursor: datetime | None,
        imported: int,
        removed: int,
        conflicts: int,
        errors: list[str],
        reconciled: bool,
    ) -> NotionSourceStatus:
        """Record how one sync of ``source_id`` ended: imported and removed are this run's counts, errors
        this run's sentences (the newest ``MAX_ERRORS``), conflicts a running total."""
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            row = await session.get(NotionSource, source_id, with_for_update=True)
            assert row is not None, "source() creates the row before a run"
            pages = await session.scalars(select(NotionPage.page_id).where(NotionPage.source_id == source_id))
            if cursor is not None and (row.cursor is None or cursor > row.cursor):
                row.cursor = cursor
            row.last_run_at = now
            if not errors:
                row.last_ok_at = now
            if reconciled:
                row.reconciled_at = now
            row.pages = len(list(pages))
            row.imported, row.removed = imported, removed
            row.conflicts += conflicts  # a running total: conflicts are rare and each one is worth seeing
            stamp = now.strftime("%Y-%m-%d %H:%M")
            row.errors = [f"{stamp} {e}" for e in errors][-MAX_ERRORS:]
            return _status(row)

    async def add_conflict(self, source_id: str, message: str) -> None:
        """Count a write-back conflict on ``source_id`` and keep its sentence among the errors."""
        async with self._sessionmaker() as session, session.begin():
            row = await session.get(NotionSource, source_id, with_for_update=True)
            if row is None:
                return
            row.conflicts += 1
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
            row.errors = [*(row.errors or []), f"{stamp} conflict: {message}"][-MAX_ERRORS:]
