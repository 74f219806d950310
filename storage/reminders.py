"""Reminders: create, list, cancel, and claim the due ones exactly once across replicas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import String, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import ConflictError, NotFoundError
from storage.models import Reminder
from storage.records import ReminderRecord


class ReminderRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def create(
        self,
        *,
        user_id: str,
        channel: str,
        thread_id: str | None,
        text: str,
        due_at: datetime,
        call_key: str | None = None,
    ) -> ReminderRecord:
        """A pending reminder; with ``call_key`` (the creating call's idempotency key) it is created once:
        called again with the same key, it returns the reminder created then."""
        if call_key is not None:
            async with self._sessionmaker() as session:
                earlier = await session.scalar(select(Reminder).where(Reminder.call_key == call_key))
                if earlier is not None:
                    return ReminderRecord.model_validate(earlier)
        row = Reminder(
            user_id=user_id,
            channel=channel,
            thread_id=thread_id,
            text=text,
            due_at=due_at,
            status="pending",
            call_key=call_key,
        )
        async with self._sessionmaker() as session, session.begin():
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return ReminderRecord.model_validate(row)

    async def pending(self, user_id: str | None = None) -> list[ReminderRecord]:
        """Pending reminders, soonest first; all users' when ``user_id`` is None."""
        query = select(Reminder).where(Reminder.status == "pending").order_by(Reminder.due_at)
        if user_id is not None:
            query = query.where(Reminder.user_id == user_id)
        async with self._sessionmaker() as session:
            return [ReminderRecord.model_validate(r) for r in await session.scalars(query)]

    async def cancel(self, user_id: str, reminder: str) -> ReminderRecord:
        """Cancel a pending reminder named by its id (or id prefix) or by words from its text."""
        needle = reminder.strip()
        if not needle:
            raise NotFoundError("Say which reminder to cancel.")
        async with self._sessionmaker() as session, session.begin():
            rows = (
                await session.scalars(
                    select(Reminder)
                    .where(
                        Reminder.user_id == user_id,
                        Reminder.status == "pending",
                        or_(
                            Reminder.id.cast(String).startswith(needle.lower(), autoescape=True),
                            Reminder.text.ilike(f"%{_escape_like(needle)}%", escape="\\"),
                        ),
                    )
                    .order_by(Reminder.due_at)
                    .with_for_update()
                )
            ).all()
            if not rows:
                raise NotFoundError(f"You have no pending reminder matching {needle!r}.")
            exact = [r for r in rows if r.text.lower() == needle.lower()]
            if len(rows) > 1 and len(exact) != 1:
                raise ConflictError(
                    f"{len(rows)} reminders match {needle!r}: "
                    + "; ".join(f"{r.text!r} ({str(r.id)[:8]})" for r in rows[:5])
                    + ". Which one?"
                )
            row = exact[0] if exact else rows[0]
            row.status = "cancelled"
            await session.flush()
            return ReminderRecord.model_validate(row)

    async def claim_due(self, now: datetime | None = None, limit: int = 100) -> list[ReminderRecord]:
        """Mark due reminders as fired and return them; concurrent callers never get the same one."""
        now = now or datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            due = (
                select(Reminder.id)
                .where(Reminder.status == "pending", Reminder.due_at <= now)
                .order_by(Reminder.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalar_subquery()
            rows = await session.scalars(
                update(Reminder)
                .where(Reminder.id.in_(due))
                .values(status="fired", fired_at=now)
                .returning(Reminder)
            )
            return [ReminderRecord.model_validate(r) for r in rows]

    async def next_due(self) -> datetime | None:
        """When the soonest pending reminder is due, if any."""
        async with self._sessionmaker() as session:
            return await session.scalar(select(func.min(Reminder.due_at)).where(Reminder.status == "pending"))

    async def get(self, reminder_id: uuid.UUID) -> ReminderRecord:
        async with self._sessionmaker() as session:
            row = await session.get(Reminder, reminder_id)
            if row is None:
                raise NotFoundError(f"There is no reminder {reminder_id}.")
            return ReminderRecord.model_validate(row)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
