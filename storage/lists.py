"""Live names for intent matching: bots, schedules and a user's pending reminders."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Bot, Reminder, Schedule


@dataclass(frozen=True, slots=True)
class Names:
    bots: tuple[str, ...]
    schedules: tuple[str, ...]
    reminders: tuple[str, ...]


async def live_names(sessionmaker: async_sessionmaker[AsyncSession], user_id: str) -> Names:
    """Names people may say: every bot and schedule, and this user's pending reminders."""
    reminders = (
        select(literal("reminder").label("kind"), Reminder.text.label("name"))
        .where(Reminder.user_id == user_id, Reminder.status == "pending")
        .order_by(Reminder.due_at)
        .limit(200)
        .subquery()
    )
    query = union_all(
        select(literal("bot").label("kind"), Bot.name.label("name")),
        select(literal("schedule").label("kind"), Schedule.name.label("name")),
        select(reminders.c.kind, reminders.c.name),
    )
    found: dict[str, list[str]] = {"bot": [], "schedule": [], "reminder": []}
    async with sessionmaker() as session:  # one round trip: this runs before every turn's matching
        for kind, name in await session.execute(query):
            found[kind].append(name)
    return Names(tuple(sorted(found["bot"])), tuple(sorted(found["schedule"])), tuple(found["reminder"]))
