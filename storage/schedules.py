"""Schedules and their runs. Each occurrence is claimed by inserting its run: the unique
(schedule_id, due_at) key decides, so two schedulers, a restart or a slow tick never run it twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import ConflictError, NotFoundError
from storage.models import Schedule, ScheduledRun
from storage.records import Record

CLAIM_LOCK = 0x5C4ED01E
"""Advisory lock held while claiming, so global and per-schedule concurrency counts hold across replicas."""
MAX_CATCH_UP = 1000
"""Most missed occurrences looked at for one schedule in one claim (a 1 s interval after a long outage)."""

Misfire = Literal["once", "all", "skip"]
RUNNING = "running"
QUEUED = "queued"
SKIPPED_CONCURRENCY = "skipped: concurrency"
SKIPPED_MISFIRE = "skipped: misfire"
LOST = "lost"
FINISHED = frozenset({"ok", "failed", "rejected", "expired"})
"""How a run that was dispatched can end."""


class ScheduleRecord(Record):
    id: uuid.UUID
    name: str
    target: str
    cron: str | None
    every_seconds: int | None
    run_at: datetime | None
    timezone: str
    owner: str
    owner_role: str
    channel: str
    thread_id: str | None
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    created_at: datetime
    intents: list[dict[str, Any]]
    concurrency: int
    misfire: Misfire
    grace_seconds: int


class ScheduledRunRecord(Record):
    id: uuid.UUID
    schedule_id: uuid.UUID
    due_at: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    result: dict[str, Any] | None
    error: str | None
    trigger: str


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run this caller won: dispatch it, then ``finish`` it."""

    run: ScheduledRunRecord
    schedule: ScheduleRecord


NextTime = Callable[[ScheduleRecord, datetime], datetime | None]
"""The schedule's first occurrence strictly after a moment (None: no more), from its recurrence."""


@dataclass(frozen=True, slots=True)
class _Limits:
    running: dict[uuid.UUID, int]
    global_limit: int

    def take(self, schedule_id: uuid.UUID, per_schedule: int) -> bool:
        """Count one more run under way when both limits allow it."""
        if sum(self.running.values()) >= self.global_limit:
            return False
        if self.running.get(schedule_id, 0) >= per_schedule:
            return False
        self.running[schedule_id] = self.running.get(schedule_id, 0) + 1
        return True


class ScheduleRepository:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    # -- schedules --------------------------------------------------------------------------------------
    async def create(self, **values: Any) -> ScheduleRecord:
        """A new schedule; ``values`` are its columns. ``ConflictError`` when the name is taken."""
        row = Schedule(**values)
        try:
            async with self._sessionmaker() as session, session.begin():
                session.add(row)
                await session.flush()
                await session.refresh(row)
                return ScheduleRecord.model_validate(row)
        except IntegrityError as err:
            raise ConflictError(f"There is already a schedule called {values.get('name')!r}.") from err

    async def names(self) -> set[str]:
        async with self._sessionmaker() as session:
            return set(await session.scalars(select(Schedule.name)))

    async def listing(self, owner: str | None = None) -> list[ScheduleRecord]:
        """Schedules by name: ``owner``'s, or everyone's when None. Reads only (never moves a next run)."""
        query = select(Schedule).order_by(Schedule.name)
        if owner is not None:
            query = query.where(Schedule.owner == owner)
        async with self._sessionmaker() as session:
            return [ScheduleRecord.model_validate(r) for r in await session.scalars(query)]

    async def get(self, name: str, owner: str | None = None) -> ScheduleRecord:
        async with self._sessionmaker() as session:
            return ScheduleRecord.model_validate(await self._row(session, name, owner))

    async def delete(self, name: str, owner: str | None = None) -> ScheduleRecord:
        """Delete a schedule and its history; a run under way finishes without a row to update."""
        async with self._sessionmaker() as session, session.begin():
            row = await self._row(session, name, owner, lock=True)
            record = ScheduleRecord.model_validate(row)
            await session.execute(delete(Schedule).where(Schedule.id == row.id))
            return record

    async def set_enabled(
        self,
        name: str,
        owner: str | None,
        enabled: bool,
        next_run_at: Callable[[ScheduleRecord], datetime | None],
    ) -> ScheduleRecord:
        """Enable or disable; enabling sets the next run from now on (``next_run_at``), so the times it was
        paused for are not run."""
        async with self._sessionmaker() as session, session.begin():
            row = await self._row(session, name, owner, lock=True)
            if enabled and not row.enabled:
                row.next_run_at = next_run_at(ScheduleRecord.model_validate(row))
            row.enabled = enabled
            await session.flush()
            return ScheduleRecord.model_validate(row)

    async def _row(self, session: AsyncSession, name: str, owner: str | None, lock: bool = False) -> Schedule:
        query = select(Schedule).where(func.lower(Schedule.name) == name.strip().lower())
        if lock:
            query = query.with_for_update()
        row = await session.scalar(query)
        if row is None or (owner is not None and row.owner != owner):
            raise NotFoundError(f"There is no schedule called {name!r}.")
        return row

    # -- runs -------------------------------------------------------------------------------------------
    async def queue_run(
        self, name: str, owner: str | None, now: datetime | None = None
    ) -> ScheduledRunRecord:
        """A run by hand: queued now, dispatched by the next scheduler to claim (limits apply)."""
        now = now or datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            row = await self._row(session, name, owner)
            run = ScheduledRun(
                schedule_id=row.id, due_at=now, started_at=now, status=QUEUED, trigger="manual"
            )
            session.add(run)
            await session.flush()
            return ScheduledRunRecord.model_validate(run)

    async def history(self, name: str, owner: str | None = None, limit: int = 20) -> list[ScheduledRunRecord]:
        """The latest runs of a schedule, newest first."""
        async with self._sessionmaker() as session:
            row = await self._row(session, name, owner)
            runs = await session.scalars(
                select(ScheduledRun)
                .where(ScheduledRun.schedule_id == row.id)
                .order_by(ScheduledRun.due_at.desc())
                .limit(limit)
            )
            return [ScheduledRunRecord.model_validate(r) for r in runs]

    async def runs(self, schedule_id: uuid.UUID | None = None) -> list[ScheduledRunRecord]:
        """Every run (of one schedule), oldest first: for reports and tests."""
        query = select(ScheduledRun).order_by(ScheduledRun.due_at)
        if schedule_id is not None:
            query = query.where(ScheduledRun.schedule_id == schedule_id)
        async with self._sessionmaker() as session:
            return [ScheduledRunRecord.model_validate(r) for r in await session.scalars(query)]

    async def next_due(self) -> datetime | None:
        """When the soonest enabled schedule is due, or now when a run waits in the queue."""
        async with self._sessionmaker() as session:
            queued = await session.scalar(
                select(func.min(ScheduledRun.started_at)).where(ScheduledRun.status == QUEUED)
            )
            soonest = await session.scalar(
                select(func.min(Schedule.next_run_at)).where(Schedule.enabled.is_(True))
            )
        found = [t for t in (queued, soonest) if t is not None]
        return min(found) if found else None

    async def claim_due(
        self,
        next_time: NextTime,
        *,
        now: datetime | None = None,
        global_limit: int = 10,
        stale_after: timedelta | None = None,
        limit: int = 100,
    ) -> list[ClaimedRun]:
        """Claim every occurrence due by ``now`` and every queued run; return the runs to dispatch.

        Each occurrence becomes a run row: ``running`` (yours to dispatch), ``skipped: concurrency`` (the
        schedule's or the global limit of runs under way was reached) or ``skipped: misfire`` (missed by
        more than the grace window and not run by the schedule's misfire policy). ``running`` rows older
        than ``stale_after`` belonged to a scheduler that stopped: they become ``lost``.
        """
        now = now or datetime.now(UTC)
        claimed: list[ClaimedRun] = []
        async with self._sessionmaker() as session, session.begin():
            await session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
            if stale_after is not None:
                await session.execute(
                    update(ScheduledRun)
                    .where(ScheduledRun.status == RUNNING, ScheduledRun.started_at < now - stale_after)
                    .values(status=LOST, finished_at=now, error="its scheduler stopped while it ran")
                )
            counts = await session.execute(
                select(ScheduledRun.schedule_id, func.count())
                .where(ScheduledRun.status == RUNNING)
                .group_by(ScheduledRun.schedule_id)
            )
            limits = _Limits({sid: n for sid, n in counts.all()}, global_limit)
            due = await session.scalars(
                select(Schedule)
                .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
                .order_by(Schedule.next_run_at)
                .limit(limit)
            )
            for row in due.all():
                claimed += await self._claim_schedule(session, row, next_time, now, limits)
            claimed += await self._claim_queued(session, now, limits)
        return claimed

    async def _claim_schedule(
        self, session: AsyncSession, row: Schedule, next_time: NextTime, now: datetime, limits: _Limits
    ) -> list[ClaimedRun]:
        schedule = ScheduleRecord.model_validate(row)
        occurrences: list[datetime] = []
        moment: datetime | None = row.next_run_at
        while moment is not None and moment <= now and len(occurrences) < MAX_CATCH_UP:
            occurrences.append(moment)
            moment = next_time(schedule, moment)
        while moment is not None and moment <= now:  # more than MAX_CATCH_UP missed: jump past now
            moment = next_time(schedule, now)
        claimed: list[ClaimedRun] = []
        for due_at, trigger in _plan(occurrences, schedule, now):
            status = trigger if trigger == SKIPPED_MISFIRE else RUNNING
            if status == RUNNING and not limits.take(row.id, row.concurrency):
                status = SKIPPED_CONCURRENCY
            inserted = await session.scalar(
                insert(ScheduledRun)
                .values(
                    id=uuid.uuid4(),
                    schedule_id=row.id,
                    due_at=due_at,
                    started_at=now,
                    status=status,
                    trigger="schedule" if trigger == SKIPPED_MISFIRE else trigger,
                    finished_at=None if status == RUNNING else now,
                )
                .on_conflict_do_nothing(constraint="uq_scheduled_runs_occurrence")
                .returning(ScheduledRun)
            )
            if inserted is not None and status == RUNNING:
                row.last_run_at = now
                claimed.append(ClaimedRun(ScheduledRunRecord.model_validate(inserted), schedule))
        row.next_run_at = moment
        await session.flush()
        return claimed

    async def _claim_queued(self, session: AsyncSession, now: datetime, limits: _Limits) -> list[ClaimedRun]:
        queued = await session.execute(
            select(ScheduledRun, Schedule)
            .join(Schedule, Schedule.id == ScheduledRun.schedule_id)
            .where(ScheduledRun.status == QUEUED)
            .order_by(ScheduledRun.started_at)
        )
        claimed: list[ClaimedRun] = []
        for run, row in queued.all():
            if limits.take(row.id, row.concurrency):
                run.status, run.started_at, row.last_run_at = RUNNING, now, now
                await session.flush()
                claimed.append(
                    ClaimedRun(ScheduledRunRecord.model_validate(run), ScheduleRecord.model_validate(row))
                )
            else:
                run.status, run.finished_at = SKIPPED_CONCURRENCY, now
        await session.flush()
        return claimed

    async def finish(
        self, run_id: uuid.UUID, status: str, *, reply: str | None = None, error: str | None = None
    ) -> bool:
        """Record how a dispatched run ended; False when its schedule was deleted meanwhile."""
        if status not in FINISHED:
            raise ValueError(f"a run ends as one of {sorted(FINISHED)}, not {status!r}")
        async with self._sessionmaker() as session, session.begin():
            done = await session.execute(
                update(ScheduledRun)
                .where(ScheduledRun.id == run_id, ScheduledRun.status == RUNNING)
                .values(
                    status=status,
                    finished_at=datetime.now(UTC),
                    result=None if reply is None else {"reply": reply[:2000]},
                    error=error[:2000] if error else None,
                )
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]


def _plan(occurrences: list[datetime], schedule: ScheduleRecord, now: datetime) -> list[tuple[datetime, str]]:
    """Each occurrence with how it is claimed: ``schedule`` (on time), ``catch-up`` (missed, run by the
    misfire policy) or ``skipped: misfire``. On time means at most ``grace_seconds`` late."""
    grace = timedelta(seconds=schedule.grace_seconds)
    missed = [t for t in occurrences if now - t > grace]
    on_time = [(t, "schedule") for t in occurrences if now - t <= grace]
    if schedule.misfire == "all":
        return [(t, "catch-up") for t in missed] + on_time
    if schedule.misfire == "once" and missed and not on_time:
        return [(t, SKIPPED_MISFIRE) for t in missed[:-1]] + [(missed[-1], "catch-up")]
    return [(t, SKIPPED_MISFIRE) for t in missed] + on_time
