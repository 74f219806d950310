"""Repositories on real PostgreSQL: approvals expire and are decided once; forgetting is not recalling."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage import ConflictError, Database, NotFoundError
from storage.approvals import ApprovalRepository
from storage.memory import MemoryRepository
from storage.models import Approval, Memory
from storage.reminders import ReminderRepository


async def test_an_expired_approval_reads_expired_and_cannot_be_approved(db: Database) -> None:
    approvals = ApprovalRepository(db.sessionmaker)
    record = await approvals.request(
        "bots_stop", {"name": "crawler"}, requested_by="ann", channel="web", thread_id=None, ttl=0.2
    )
    assert record.status == "pending"
    await asyncio.sleep(0.3)
    assert (await approvals.get(record.id)).status == "expired"
    with pytest.raises(ConflictError, match="expired"):
        await approvals.decide(record.id, approve=True, decided_by="ann")
    async with db.sessionmaker() as session:  # reading it did not write it
        assert await session.scalar(select(Approval.status).where(Approval.id == record.id)) == "pending"
    assert await approvals.pending() == []
    async with db.sessionmaker() as session:
        assert await session.scalar(select(Approval.status).where(Approval.id == record.id)) == "expired"


async def test_a_pending_approval_is_decided_once(db: Database) -> None:
    approvals = ApprovalRepository(db.sessionmaker)
    record = await approvals.request(
        "memory_forget", {"query": "x"}, requested_by="ann", channel="cli", thread_id=None, ttl=60
    )
    decided = await approvals.find(str(record.id)[:8])
    assert decided.id == record.id
    assert (await approvals.decide(record.id, approve=False, decided_by="bob")).status == "rejected"
    with pytest.raises(ConflictError, match="rejected already"):
        await approvals.decide(record.id, approve=True, decided_by="bob")


@pytest.mark.parametrize("prefix", ["________", "_", "%", "%%", "_%", "", "   "])
async def test_an_id_prefix_is_matched_literally_not_as_a_pattern(db: Database, prefix: str) -> None:
    approvals = ApprovalRepository(db.sessionmaker)
    record = await approvals.request(
        "memory_forget", {"query": "x"}, requested_by="ann", channel="cli", thread_id=None, ttl=60
    )
    with pytest.raises(NotFoundError):
        await approvals.find(prefix)
    assert (await approvals.find(str(record.id)[:4].upper())).id == record.id


async def test_forget_deletes_matches_and_history_without_counting_an_access(db: Database) -> None:
    memories = MemoryRepository(db.sessionmaker)
    old, _ = await memories.remember(user_id="ann", content="my editor is vim", subject="editor")
    new, superseded = await memories.remember(user_id="ann", content="my editor is neovim", subject="editor")
    assert [s.id for s in superseded] == [old.id]
    kept, _ = await memories.remember(user_id="ann", content="my shell is fish", subject="shell")
    gone = await memories.forget(user_id="ann", query="my editor", subject="editor")
    assert [g.id for g in gone] == [new.id]
    async with db.sessionmaker() as session:
        left = {row.id: row.access_count for row in await session.scalars(select(Memory))}
    assert left == {kept.id: 0}
    recalled = await memories.recall(user_id="ann", query="my shell", subject="shell")
    assert [r.id for r, _ in recalled] == [kept.id]
    async with db.sessionmaker() as session:
        assert await session.scalar(select(Memory.access_count).where(Memory.id == kept.id)) == 1


@pytest.mark.parametrize("pattern", ["________", "%", "_%"])
async def test_token_and_reminder_id_prefixes_are_literal(db: Database, pattern: str) -> None:
    """LIKE wildcards in an id prefix match nothing: revoking '________' never takes some token."""
    from datetime import UTC, datetime, timedelta

    from storage.reminders import ReminderRepository
    from storage.tokens import TokenRepository

    tokens = TokenRepository(db.sessionmaker)
    record, _ = await tokens.create("laptop", role="viewer", user_id="ann")
    with pytest.raises(NotFoundError):
        await tokens.revoke(pattern)
    assert not next(t for t in await tokens.list() if t.id == record.id).revoked_at
    reminders = ReminderRepository(db.sessionmaker)
    due = datetime.now(UTC) + timedelta(hours=1)
    await reminders.create(user_id="ann", channel="cli", thread_id=None, text="stretch", due_at=due)
    with pytest.raises(NotFoundError):
        await reminders.cancel("ann", pattern)


async def test_a_fact_stored_with_a_call_key_is_stored_once(db: Database) -> None:
    memories = MemoryRepository(db.sessionmaker)
    old, _ = await memories.remember(user_id="ann", content="my editor is vim", subject="editor")
    first, replaced = await memories.remember(
        user_id="ann", content="my editor is helix", subject="editor", call_key="turn-1"
    )
    again, replaced_again = await memories.remember(
        user_id="ann", content="my editor is helix", subject="editor", call_key="turn-1"
    )
    assert again.id == first.id and [r.id for r in replaced_again] == [r.id for r in replaced] == [old.id]
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(Memory).where(Memory.content == "my editor is helix"))).all()
    assert len(rows) == 1


async def test_a_reminder_created_with_a_call_key_is_created_once(db: Database) -> None:
    reminders = ReminderRepository(db.sessionmaker)
    due = datetime.now(UTC) + timedelta(hours=1)
    made = [
        await reminders.create(
            user_id="ann", channel="web", thread_id=None, text="stretch", due_at=due, call_key="turn-2"
        )
        for _ in range(2)
    ]
    assert made[0].id == made[1].id
    assert [r.text for r in await reminders.pending("ann")] == ["stretch"]
