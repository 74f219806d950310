"""Handing the local admin's data to the first web account: chat threads, memories, reminders, schedules.

With the automatic login everything belongs to the local admin; the first account created may take it
over (``kommandant users add`` asks), in one transaction. The audit trail is left as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import ChainlitThread, ChainlitUser, Memory, Reminder, Schedule

__all__ = ["Handover", "hand_over_local", "local_holdings"]


@dataclass(frozen=True, slots=True)
class Handover:
    """What the local admin of the automatic login owns: chat threads, memories, reminders, schedules."""

    threads: int = 0
    memories: int = 0
    reminders: int = 0
    schedules: int = 0

    @property
    def empty(self) -> bool:
        """Nothing to hand over."""
        return not (self.threads or self.memories or self.reminders or self.schedules)

    def describe(self) -> str:
        """E.g. "3 chat threads, 1 memory and 2 reminders" (the kinds there are)."""
        parts = [
            f"{count} {one if count == 1 else many}"
            for count, one, many in (
                (self.threads, "chat thread", "chat threads"),
                (self.memories, "memory", "memories"),
                (self.reminders, "reminder", "reminders"),
                (self.schedules, "schedule", "schedules"),
            )
            if count
        ]
        return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts)


async def local_holdings(sessionmaker: async_sessionmaker[AsyncSession], local_user: str) -> Handover:
    """What ``local_user`` (the local admin of the automatic login) owns now (counted, nothing changes)."""
    async with sessionmaker() as session:

        async def count(column: Any) -> int:
            return int(await session.scalar(select(func.count()).where(column == local_user)) or 0)

        return Handover(
            threads=await count(ChainlitThread.user_identifier),
            memories=await count(Memory.user_id),
            reminders=await count(Reminder.user_id),
            schedules=await count(Schedule.owner),
        )


async def hand_over_local(
    sessionmaker: async_sessionmaker[AsyncSession], local_user: str, username: str
) -> Handover:
    """Give the first account what the local admin had (chat threads, memories, reminders, schedules),
    in one transaction; returns what moved. The audit trail keeps its rows as they were written: it
    is a record of who did what, under which name."""
    async with sessionmaker() as session, session.begin():
        local = await session.scalar(select(ChainlitUser).where(ChainlitUser.identifier == local_user))
        person = await session.scalar(select(ChainlitUser).where(ChainlitUser.identifier == username))
        if local is not None and person is None:
            local.identifier = username  # Chainlit finds this row (and its threads) at the first login
        elif local is not None and person is not None:
            await session.execute(
                update(ChainlitThread).where(ChainlitThread.user_id == local.id).values(user_id=person.id)
            )
            await session.delete(local)
        moved = []
        for column, model in (
            (ChainlitThread.user_identifier, ChainlitThread),
            (Memory.user_id, Memory),
            (Reminder.user_id, Reminder),
            (Schedule.owner, Schedule),
        ):
            result = await session.execute(
                update(model).where(column == local_user).values({column: username})
            )
            moved.append(int(result.rowcount or 0))  # type: ignore[attr-defined]
    return Handover(*moved)
