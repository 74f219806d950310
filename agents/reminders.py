"""The reminders agent: create, list, cancel, and fire due reminders as events to the user's channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from agents.base import Agent, CallContext
from agents.services import Services
from storage.records import ReminderRecord
from storage.reminders import ReminderRepository
from tools.builtin import reminders
from tools.builtin.reminders import (
    ReminderCancelInput,
    ReminderCancelled,
    ReminderCreated,
    ReminderCreateInput,
    ReminderInfo,
    ReminderList,
    RemindersListInput,
)

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
"""Longest wait between checks, so reminders created by other replicas fire on time too."""


def fired_topic(channel: str) -> str:
    """Topic of a fired reminder for one channel: front doors subscribe to ``reminders.fired.<channel>``."""
    return f"reminders.fired.{channel}"


def _info(record: ReminderRecord) -> ReminderInfo:
    status = {"fired": "sent"}.get(record.status, record.status)
    return ReminderInfo(id=str(record.id), text=record.text, due=record.due_at, status=status)


class RemindersAgent(Agent):
    name = reminders.AGENT
    description = "Keeps reminders and tells people when they are due."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.reminders = ReminderRepository(services.database.sessionmaker)
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self.register(reminders.CREATE, self.create)
        self.register(reminders.LIST, self.list_pending)
        self.register(reminders.CANCEL, self.cancel)

    async def create(self, args: ReminderCreateInput, ctx: CallContext) -> ReminderCreated:
        record = await self.reminders.create(
            user_id=ctx.user,
            channel=ctx.channel,
            thread_id=ctx.thread,
            text=args.text,
            due_at=args.due,
            call_key=ctx.idempotency_key or None,
        )
        self._wake.set()
        return ReminderCreated(reminder=_info(record))

    async def list_pending(self, args: RemindersListInput, ctx: CallContext) -> ReminderList:
        return ReminderList(reminders=[_info(r) for r in await self.reminders.pending(ctx.user)])

    async def cancel(self, args: ReminderCancelInput, ctx: CallContext) -> ReminderCancelled:
        return ReminderCancelled(reminder=_info(await self.reminders.cancel(ctx.user, args.reminder)))

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._fire_due_forever(), name="reminders-due")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def fire_due(self) -> list[ReminderRecord]:
        """Claim every due reminder (once across replicas), publish it and audit it."""
        fired = await self.reminders.claim_due()
        for record in fired:
            payload = {
                "id": str(record.id),
                "user": record.user_id,
                "channel": record.channel,
                "thread": record.thread_id,
                "text": record.text,
                "due": record.due_at.isoformat(),
            }
            await self.services.bus.publish(fired_topic(record.channel), payload)
            await self.services.audit.append(
                "reminder_fired",
                actor=self.name,
                owner=record.user_id,
                channel=record.channel,
                thread_id=record.thread_id,
                tool=reminders.CREATE.name,
                data={"reminder": str(record.id)},
            )
        return fired

    async def _fire_due_forever(self) -> None:
        while True:
            try:
                await self.fire_due()
                soonest = await self.reminders.next_due()
            except Exception:  # the database may blip; try again on the next tick
                log.warning("checking due reminders failed", exc_info=True)
                soonest = None
            wait = POLL_SECONDS
            if soonest is not None:
                wait = min(wait, max(0.0, (soonest - datetime.now(UTC)).total_seconds()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
