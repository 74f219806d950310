"""Connector state: Slack users mapped to accounts, deliveries seen once, each connector's last health,
and the finished scheduled runs a connector delivers to its platform."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import NotFoundError
from storage.models import ConnectorDelivery, ConnectorState, Schedule, ScheduledRun, SlackUser, WebAccount
from storage.records import Record


class SlackUserRecord(Record):
    """A Slack user's mapping: the account their turns run as, and the role stored with it."""

    slack_user_id: str
    account: str
    role: str
    created_at: datetime


class ConnectorStateRecord(Record):
    """A connector's last health reading."""

    name: str
    state: str
    detail: str
    failures: int
    checked_at: datetime


class FinishedRun(Record):
    """A scheduled run that ended, for delivery to the channel and thread its schedule belongs to."""

    id: uuid.UUID
    schedule: str
    owner: str
    thread_id: str | None
    status: str
    reply: str
    error: str | None
    finished_at: datetime


class SlackUsers:
    """``kommandant slack map``: which Kommandant account (and role) a Slack user acts as."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def map(self, slack_user_id: str, account: str, role: str) -> SlackUserRecord:
        """Map (or re-map) a Slack user to ``account`` with ``role``."""
        async with self._sessionmaker() as session, session.begin():
            stmt = insert(SlackUser).values(slack_user_id=slack_user_id, account=account, role=role)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[SlackUser.slack_user_id], set_={"account": account, "role": role}
                )
            )
        found = await self.get(slack_user_id)
        assert found is not None
        return found

    async def unmap(self, slack_user_id: str) -> None:
        """Forget a Slack user's mapping; ``NotFoundError`` when there is none."""
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(delete(SlackUser).where(SlackUser.slack_user_id == slack_user_id))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFoundError(f"Slack user {slack_user_id} is not mapped.")

    async def get(self, slack_user_id: str) -> SlackUserRecord | None:
        """The mapping of one Slack user, if any."""
        async with self._sessionmaker() as session:
            row = await session.get(SlackUser, slack_user_id)
            return None if row is None else SlackUserRecord.model_validate(row)

    async def list(self) -> list[SlackUserRecord]:
        """Every mapping, by Slack user id."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(select(SlackUser).order_by(SlackUser.slack_user_id))
            return [SlackUserRecord.model_validate(r) for r in rows]

    async def identity(self, slack_user_id: str) -> tuple[str, str] | None:
        """(account, role) a mapped Slack user acts as now: a web account's current role when the account
        is one (a role change there applies at once), else the role stored with the mapping."""
        async with self._sessionmaker() as session:
            row = await session.get(SlackUser, slack_user_id)
            if row is None:
                return None
            role = await session.scalar(select(WebAccount.role).where(WebAccount.username == row.account))
            return row.account, str(role or row.role)


class Deliveries:
    """Ids of deliveries seen (inbound) or sent (outbound), so a retried one acts once across replicas."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def first(self, source: str, delivery_id: str) -> bool:
        """Record ``delivery_id`` of ``source``; True only for the first caller ever (across processes)."""
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                insert(ConnectorDelivery)
                .values(source=source, delivery_id=delivery_id[:200])
                .on_conflict_do_nothing()
                .returning(ConnectorDelivery.delivery_id)
            )
            return result.first() is not None

    async def prune(self, older_than: timedelta) -> int:
        """Forget delivery ids older than ``older_than``."""
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(ConnectorDelivery).where(
                    ConnectorDelivery.received_at < datetime.now(UTC) - older_than
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


class ConnectorStates:
    """Each connector's last health reading, kept in ``connector_state`` under the key ``health``
    (``kommandant doctor`` and the control panel can read it)."""

    KEY = "health"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def record(self, name: str, state: str, detail: str, failures: int) -> None:
        """Keep the newest reading of connector ``name``."""
        now = datetime.now(UTC)
        value = {"state": state, "detail": detail[:2000], "failures": failures, "checked_at": now.isoformat()}
        async with self._sessionmaker() as session, session.begin():
            stmt = insert(ConnectorState).values(connector=name, key=self.KEY, value=value)
            stmt = stmt.on_conflict_do_update(
                index_elements=[ConnectorState.connector, ConnectorState.key],
                set_={"value": value, "updated_at": now},
            )
            await session.execute(stmt)

    async def all(self) -> list[ConnectorStateRecord]:
        """Every connector's last reading, by name."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(ConnectorState)
                .where(ConnectorState.key == self.KEY)
                .order_by(ConnectorState.connector)
            )
            return [
                ConnectorStateRecord(
                    name=r.connector,
                    state=str(r.value.get("state", "")),
                    detail=str(r.value.get("detail", "")),
                    failures=int(r.value.get("failures", 0)),
                    checked_at=datetime.fromisoformat(str(r.value.get("checked_at"))),
                )
                for r in rows
            ]


async def finished_runs(
    sessionmaker: async_sessionmaker[AsyncSession], channel: str, since: datetime
) -> list[FinishedRun]:
    """Runs of schedules in ``channel`` that finished after ``since``, oldest first."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(ScheduledRun, Schedule)
                .join(Schedule, Schedule.id == ScheduledRun.schedule_id)
                .where(Schedule.channel == channel, ScheduledRun.finished_at > since)
                .order_by(ScheduledRun.finished_at)
                .limit(100)
            )
        ).all()
    return [
        FinishedRun(
            id=run.id,
            schedule=schedule.name,
            owner=schedule.owner,
            thread_id=schedule.thread_id,
            status=run.status,
            reply=str((run.result or {}).get("reply", "")),
            error=run.error,
            finished_at=run.finished_at,
        )
        for run, schedule in rows
    ]
