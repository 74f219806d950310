"""The control panel's event log (``panel_events``): what the live stream shows, and resumes from.

Audit rows that are events arrive by a trigger (migration 0011); bus-only events (agents up and down,
bot states) through ``append``. Every insert holds one advisory lock until its commit, so ids become
visible in increasing order: a reader that saw id N never later finds a smaller id committed, and
"every row after N" is exactly what a client that last saw N missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import PanelEvent

EVENT_LOCK = 0x6B6F6D6D65767473  # "kommevts": the same key as the trigger's in migration 0011


class EventRecord(BaseModel):
    """One event of the live stream."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int = Field(description="Increasing id; the stream's event id and Last-Event-ID.")
    ts: datetime = Field(description="When it happened (UTC).")
    kind: str = Field(description="What happened, e.g. 'tool_result', 'agent_down', 'bot_state'.")
    owner: str | None = Field(default=None, description="Whose it is; None: a system event for everyone.")
    data: dict[str, Any] = Field(default_factory=dict, description="Details (no tool arguments).")

    def visible_to(self, user: str, *, admin: bool) -> bool:
        """Admins see every event; anyone else system events and their own."""
        return admin or self.owner is None or self.owner == user


class CallInfo(BaseModel):
    """One finished tool call."""

    id: int = Field(description="Event id (page with ``before``).")
    ts: datetime = Field(description="When it finished.")
    user: str | None = Field(default=None, description="Whose call it was.")
    tool: str | None = Field(default=None, description="The tool.")
    agent: str | None = Field(default=None, description="The agent that answered.")
    ok: bool = Field(description="Whether it succeeded.")
    duration_ms: float | None = Field(default=None, description="Milliseconds from dispatch to result.")
    call_id: str | None = Field(default=None, description="The call's id on the bus.")
    channel: str | None = Field(default=None, description="The front door it came through.")
    summary: str | None = Field(default=None, description="The result in words (private parts hashed).")


class AgentLoad(BaseModel):
    """What one agent is doing, as the event log knows it."""

    model_config = ConfigDict(frozen=True)

    in_flight: int = Field(default=0, ge=0, description="Calls sent and not answered yet.")
    finished: int = Field(default=0, ge=0, description="Calls finished in the window.")
    busy_seconds: float = Field(default=0.0, ge=0, description="Their durations added up.")


_CALL_COLUMNS = (
    PanelEvent.id,
    PanelEvent.ts,
    PanelEvent.owner,
    PanelEvent.data["tool"].astext,
    PanelEvent.data["agent"].astext,
    PanelEvent.data["ok"].as_boolean(),
    PanelEvent.data["duration_ms"].as_float(),
    PanelEvent.data["call"].astext,
    PanelEvent.data["channel"].astext,
    PanelEvent.data["summary"].astext,
)
"""What the calls view shows, read out of ``data`` field by field (built once: it is polled)."""


class EventLog:
    """Append, read after an id, and prune the event log."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def append(
        self, kind: str, data: dict[str, Any], *, owner: str | None = None, dedupe: str | None = None
    ) -> int | None:
        """Add one event; its id, or None when an event with the same ``dedupe`` key exists already
        (another web process recorded the same bus event)."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK})
            statement = (
                insert(PanelEvent)
                .values(kind=kind, owner=owner, data=data, dedupe=dedupe)
                .on_conflict_do_nothing(constraint="uq_panel_events_dedupe")
                .returning(PanelEvent.id)
            )
            return await session.scalar(statement)

    async def after(
        self,
        last_id: int,
        *,
        limit: int = 500,
        kinds: Iterable[str] | None = None,
        user: str | None = None,
        since: datetime | None = None,
    ) -> list[EventRecord]:
        """Events with an id above ``last_id``, oldest first. ``user``: only system events and that user's
        (None: everyone's, for admins); ``kinds``: only those; ``since``: only events at or after it."""
        query = select(PanelEvent).where(PanelEvent.id > last_id).order_by(PanelEvent.id).limit(limit)
        wanted = list(kinds or [])
        if wanted:
            query = query.where(PanelEvent.kind.in_(wanted))
        if user is not None:
            query = query.where(or_(PanelEvent.owner.is_(None), PanelEvent.owner == user))
        if since is not None:
            query = query.where(PanelEvent.ts >= since)
        async with self._sessionmaker() as session:
            return [EventRecord.model_validate(row) for row in await session.scalars(query)]

    async def newest_id(self) -> int:
        """The newest id (0 when the log is empty)."""
        async with self._sessionmaker() as session:
            return int(await session.scalar(select(func.coalesce(func.max(PanelEvent.id), 0))) or 0)

    async def oldest_id(self) -> int:
        """The oldest id still kept (0 when the log is empty)."""
        async with self._sessionmaker() as session:
            return int(await session.scalar(select(func.coalesce(func.min(PanelEvent.id), 0))) or 0)

    async def recent(
        self, *, kinds: Iterable[str], since: timedelta, user: str | None = None, limit: int = 10_000
    ) -> list[EventRecord]:
        """The events of ``kinds`` from the last ``since``, newest first (``user`` as in ``after``)."""
        query = (
            select(PanelEvent)
            .where(PanelEvent.kind.in_(list(kinds)), PanelEvent.ts >= datetime.now(UTC) - since)
            .order_by(PanelEvent.id.desc())
            .limit(limit)
        )
        if user is not None:
            query = query.where(or_(PanelEvent.owner.is_(None), PanelEvent.owner == user))
        async with self._sessionmaker() as session:
            return [EventRecord.model_validate(row) for row in await session.scalars(query)]

    async def calls(
        self,
        *,
        limit: int,
        before: int | None = None,
        user: str | None = None,
        tool: str | None = None,
        ok: bool | None = None,
        exclude_channel: str | None = None,
    ) -> list[CallInfo]:
        """Finished tool calls (``tool_result`` events), newest first, older than id ``before``; ``user``
        as in ``after``; ``tool``, ``ok``: only those; ``exclude_channel``: leave out that front door's.

        Only the fields shown are read out of ``data`` (not the whole document), and the rows become
        models without a second validation: the calls view is polled by every open dashboard."""
        data = PanelEvent.data
        query = (
            select(*_CALL_COLUMNS)
            .where(PanelEvent.kind == "tool_result")
            .order_by(PanelEvent.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(PanelEvent.id < before)
        if user is not None:
            query = query.where(or_(PanelEvent.owner.is_(None), PanelEvent.owner == user))
        match: dict[str, Any] = {}
        if tool is not None:
            match["tool"] = tool
        if ok is not None:
            match["ok"] = ok
        if match:
            query = query.where(data.contains(match))
        if exclude_channel is not None:
            query = query.where(data["channel"].astext.is_distinct_from(exclude_channel))
        async with self._sessionmaker() as session:
            # one round trip: a lone read needs no BEGIN and ROLLBACK around it
            connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            rows = (await connection.execute(query)).all()
        return [
            CallInfo.model_construct(
                id=r[0],
                ts=r[1],
                user=r[2],
                tool=r[3],
                agent=r[4],
                ok=bool(r[5]),
                duration_ms=r[6],
                call_id=r[7],
                channel=r[8],
                summary=r[9],
            )
            for r in rows
        ]

    async def agent_load(self, *, call_timeout: timedelta, window: timedelta) -> dict[str, AgentLoad]:
        """Per agent: calls dispatched and not answered yet (a ``tool_call`` with no ``tool_result`` of
        the same call id, younger than ``call_timeout``: an older one has timed out), calls finished in the
        last ``window`` and the time they took. Agents with neither are left out."""
        now = datetime.now(UTC)
        # one pass over the window grouped by call id (no join: its cost does not hang on the planner's
        # row estimates); a call is in flight when its group has the tool_call and no tool_result
        kind = PanelEvent.kind
        per_call = (
            select(
                func.max(PanelEvent.data["agent"].astext).label("agent"),
                func.bool_or(kind == "tool_call").label("sent"),
                func.bool_or(kind == "tool_result").label("answered"),
            )
            .where(kind.in_(["tool_call", "tool_result"]), PanelEvent.ts >= now - call_timeout)
            .group_by(PanelEvent.data["call"].astext)
            .subquery()
        )
        waiting = (
            select(per_call.c.agent, func.count())
            .where(per_call.c.sent, ~per_call.c.answered)
            .group_by(per_call.c.agent)
        )
        done_agent = PanelEvent.data["agent"].astext
        busy = func.coalesce(func.sum(PanelEvent.data["duration_ms"].as_float()), 0)
        finished = (
            select(done_agent, func.count(), busy)
            .where(PanelEvent.kind == "tool_result", PanelEvent.ts >= now - window)
            .group_by(done_agent)
        )
        loads: dict[str, AgentLoad] = {}
        async with self._sessionmaker() as session:
            for name, count in (await session.execute(waiting)).all():
                if name:
                    loads[name] = AgentLoad(in_flight=int(count))
            for name, count, busy_ms in (await session.execute(finished)).all():
                if name:
                    previous = loads.get(name, AgentLoad())
                    loads[name] = previous.model_copy(
                        update={"finished": int(count), "busy_seconds": float(busy_ms) / 1000}
                    )
        return loads

    async def prune(self, keep: timedelta) -> int:
        """Delete events older than ``keep``; how many. Never the newest one, so ids keep increasing
        across a restart even when the log was quiet for longer than ``keep``."""
        newest = await self.newest_id()
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(PanelEvent).where(PanelEvent.ts < datetime.now(UTC) - keep, PanelEvent.id < newest)
            )
            return int(getattr(result, "rowcount", 0) or 0)
