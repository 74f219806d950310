"""The scheduler agent: create, list, delete, enable, disable, run now and show the history of schedules.

It keeps schedules; it does not fire them. Firing runs the stored command through the Kommandant
(policy, approvals, audit), so it lives on the assistant's side (``assistant.scheduler``), which claims
due occurrences with ``ScheduleRepository.claim_due``. This agent tells those loops about changes with a
``schedules.changed`` event, so a new or re-enabled schedule is not left waiting for their next wake-up.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from agents.base import Agent, CallContext
from agents.errors import AgentError
from agents.services import Services
from storage.errors import NotFoundError
from storage.schedules import ScheduledRunRecord, ScheduleRecord, ScheduleRepository
from tools.builtin import schedules
from tools.builtin.base import when_text
from tools.builtin.schedules import (
    Recurrence,
    ScheduleChanged,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduledIntent,
    ScheduledRunInfo,
    ScheduleHistory,
    ScheduleHistoryInput,
    ScheduleInfo,
    ScheduleList,
    ScheduleNameInput,
    ScheduleRun,
    SchedulesCreateInput,
    SchedulesListInput,
)
from tools.builtin.system import CallDescription, DescribeInput

CHANGED = "schedules.changed"
"""Topic published when a schedule may be due sooner than before (created, enabled, run by hand)."""


def recurrence(schedule: ScheduleRecord) -> Recurrence:
    """The recurrence a stored schedule runs on."""
    return Recurrence(cron=schedule.cron, every_seconds=schedule.every_seconds, at=schedule.run_at)


def next_time(schedule: ScheduleRecord, after: datetime) -> datetime | None:
    """The schedule's first occurrence strictly after ``after`` (intervals count on from ``after``, the
    occurrence just claimed, so they keep their rhythm)."""
    return recurrence(schedule).next_after(after, schedule.timezone, anchor=after)


def _next_from_now(schedule: ScheduleRecord) -> datetime | None:
    now = datetime.now(UTC)
    return recurrence(schedule).next_after(now, schedule.timezone, anchor=now)


def schedule_info(record: ScheduleRecord) -> ScheduleInfo:
    return ScheduleInfo(
        name=record.name,
        target=record.target,
        when=recurrence(record),
        timezone=record.timezone,
        next_run_at=record.next_run_at,
        last_run_at=record.last_run_at,
        enabled=record.enabled,
        owner=record.owner,
        concurrency=record.concurrency,
        misfire=record.misfire,
        command=[ScheduledIntent.model_validate(i) for i in record.intents],
    )


def run_info(run: ScheduledRunRecord) -> ScheduledRunInfo:
    return ScheduledRunInfo(
        id=str(run.id),
        due_at=run.due_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        trigger=run.trigger,
        reply=(run.result or {}).get("reply") or run.error,
    )


def _derived_name(target: str, taken: set[str]) -> str:
    words = re.findall(r"[a-z0-9]+", target.lower())
    base = (
        "-".join(w for w in words if w not in {"the", "a", "an", "my", "our"})[:40].strip("-") or "schedule"
    )
    name, n = base, 2
    while name.lower() in taken:
        name, n = f"{base}-{n}", n + 1
    return name


class SchedulerAgent(Agent):
    name = schedules.AGENT
    description = "Keeps schedules: commands that run on a cron, an interval or once, in a time zone."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.schedules = ScheduleRepository(services.database.sessionmaker)
        self.register(schedules.CREATE, self.create)
        self.register(schedules.LIST, self.list_schedules)
        self.register(schedules.DELETE, self.delete)
        self.register(schedules.RUN_NOW, self.run_now)
        self.register(schedules.ENABLE, self.enable)
        self.register(schedules.DISABLE, self.disable)
        self.register(schedules.HISTORY, self.history)
        self.register(schedules.DESCRIBE, self.describe)

    def _owner(self, ctx: CallContext) -> str | None:
        """Whose schedules a caller sees and changes: their own; an admin's, everyone's."""
        return None if ctx.role == "admin" else ctx.user

    async def create(self, args: SchedulesCreateInput, ctx: CallContext) -> ScheduleCreated:
        if not args.command:
            raise AgentError(
                f"I could not tell which command {args.target!r} is, so I cannot schedule it; "
                "schedule it through Kommandant, which understands the sentence first."
            )
        timezone = args.timezone or self.services.settings.timezone
        now = datetime.now(UTC)
        first = args.when.next_after(now, timezone)
        if first is None:
            raise AgentError(
                f"{args.when.describe().removeprefix('on ')} has already passed; pick a later time."
            )
        taken = {n.lower() for n in await self.schedules.names()}
        record = await self.schedules.create(
            name=args.name or _derived_name(args.target, taken),
            target=args.target,
            cron=args.when.cron,
            every_seconds=args.when.every_seconds,
            run_at=args.when.at,
            timezone=timezone,
            owner=ctx.user,
            owner_role=ctx.role,
            channel=ctx.channel,
            thread_id=ctx.thread,
            enabled=True,
            next_run_at=first,
            intents=[i.model_dump(mode="json") for i in args.command],
            concurrency=args.concurrency,
            misfire=args.misfire,
            grace_seconds=args.grace_seconds,
        )
        await self._changed(record)
        return ScheduleCreated(schedule=schedule_info(record))

    async def list_schedules(self, args: SchedulesListInput, ctx: CallContext) -> ScheduleList:
        found = await self.schedules.listing(self._owner(ctx))
        return ScheduleList(schedules=[schedule_info(r) for r in found])

    async def delete(self, args: ScheduleNameInput, ctx: CallContext) -> ScheduleDeleted:
        record = await self.schedules.delete(args.name, self._owner(ctx))
        return ScheduleDeleted(name=record.name)

    async def run_now(self, args: ScheduleNameInput, ctx: CallContext) -> ScheduleRun:
        run = await self.schedules.queue_run(args.name, self._owner(ctx))
        record = await self.schedules.get(args.name, self._owner(ctx))
        await self._changed(record)
        return ScheduleRun(name=record.name, run_id=str(run.id), started_at=run.started_at)

    async def enable(self, args: ScheduleNameInput, ctx: CallContext) -> ScheduleChanged:
        record = await self.schedules.set_enabled(args.name, self._owner(ctx), True, _next_from_now)
        await self._changed(record)
        return ScheduleChanged(schedule=schedule_info(record))

    async def disable(self, args: ScheduleNameInput, ctx: CallContext) -> ScheduleChanged:
        record = await self.schedules.set_enabled(args.name, self._owner(ctx), False, _next_from_now)
        return ScheduleChanged(schedule=schedule_info(record))

    async def history(self, args: ScheduleHistoryInput, ctx: CallContext) -> ScheduleHistory:
        record = await self.schedules.get(args.name, self._owner(ctx))
        runs = await self.schedules.history(args.name, self._owner(ctx), args.limit)
        return ScheduleHistory(name=record.name, runs=[run_info(r) for r in runs])

    async def describe(self, args: DescribeInput, ctx: CallContext) -> CallDescription:
        """What a delete would remove, as the caller sees the schedule (their own; an admin's, any):
        "delete the schedule 'nightly' (every day at 3:00, runs 'run the crawler'; next run ...)"."""
        if args.tool != schedules.DELETE.name:
            return CallDescription(text="")
        named = schedules.DELETE.validate_arguments(args.arguments)
        assert isinstance(named, ScheduleNameInput)
        try:
            record = await self.schedules.get(named.name, self._owner(ctx))
        except NotFoundError:  # the delete would fail the same way, for the same caller
            return CallDescription(text=f"delete the schedule '{named.name}', which does not exist")
        return CallDescription(text=delete_words(schedule_info(record)))

    async def _changed(self, record: ScheduleRecord) -> None:
        await self.services.bus.publish(CHANGED, {"name": record.name})


def delete_words(schedule: ScheduleInfo) -> str:
    """A delete in words for an approval card: when the schedule runs, what, and when next."""
    details = f"{schedule.when.describe()}, runs '{schedule.target}'"
    if schedule.next_run_at is not None and schedule.enabled:
        moment = schedule.next_run_at.astimezone(ZoneInfo(schedule.timezone))
        details += f"; next run {when_text(moment)} {schedule.timezone}"
    elif not schedule.enabled:
        details += "; paused"
    return f"delete the schedule '{schedule.name}' ({details})"
