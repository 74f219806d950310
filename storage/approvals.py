"""Approvals of dangerous tool calls: request, decide once, expire."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import ConflictError, NotFoundError
from storage.models import Approval
from storage.records import ApprovalRecord

_ID_PREFIX = re.compile(r"^[0-9a-f-]{1,36}$")
"""What the start of an approval id can look like: a UUID's lowercase hex digits and dashes."""


class ApprovalRepository:
    """Pending approvals live in Postgres so any front door in any process can decide them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def request(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        requested_by: str,
        channel: str,
        thread_id: str | None,
        ttl: float,
        requester_role: str = "viewer",
        alive_for: float | None = None,
    ) -> ApprovalRecord:
        """Store a pending approval that expires after ``ttl`` seconds.

        ``requester_role``: the asking person's role, kept for a call run after they left.
        ``alive_for``: the requester waits for the decision; ``renew`` keeps that mark fresh.
        """
        now = datetime.now(UTC)
        row = Approval(
            tool=tool,
            arguments=arguments,
            requested_by=requested_by,
            channel=channel,
            thread_id=thread_id,
            requester_role=requester_role,
            requester_alive_until=None if alive_for is None else now + timedelta(seconds=alive_for),
            status="pending",
            expires_at=now + timedelta(seconds=ttl),
        )
        async with self._sessionmaker() as session, session.begin():
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return ApprovalRecord.model_validate(row)

    async def get(self, approval_id: uuid.UUID | str) -> ApprovalRecord:
        """One approval, reported 'expired' once its time ran out (a read: waiting turns poll this)."""
        key = _parse_id(approval_id)
        async with self._sessionmaker() as session:
            row = await session.get(Approval, key)
            if row is None:
                raise NotFoundError(f"There is no approval {approval_id}.")
            record = ApprovalRecord.model_validate(row)
        if record.status == "pending" and record.expires_at <= datetime.now(UTC):
            return record.model_copy(update={"status": "expired"})
        return record

    async def find(self, prefix: str) -> ApprovalRecord:
        """An approval by its id or a unique prefix of it (people type the first few characters)."""
        prefix = prefix.strip().lower()
        try:
            return await self.get(prefix)
        except NotFoundError:
            raise
        except ValueError:
            pass
        if not _ID_PREFIX.match(prefix):
            raise NotFoundError(
                f"There is no approval starting with {prefix!r}: ids are hex digits and dashes."
            )
        # autoescape: the prefix is matched literally, never as a LIKE pattern ('_' and '%' are wildcards)
        match = Approval.id.cast(String).startswith(prefix, autoescape=True)
        async with self._sessionmaker() as session:
            rows = (await session.scalars(select(Approval).where(match).limit(2))).all()
        if not rows:
            raise NotFoundError(f"There is no approval starting with {prefix!r}.")
        if len(rows) > 1:
            raise ConflictError(f"More than one approval starts with {prefix!r}; give more of the id.")
        return await self.get(rows[0].id)

    async def pending(self) -> list[ApprovalRecord]:
        """Approvals still waiting for a person, oldest first."""
        await self.expire_overdue()
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(Approval).where(Approval.status == "pending").order_by(Approval.created_at)
            )
            return [ApprovalRecord.model_validate(r) for r in rows]

    async def decide(
        self, approval_id: uuid.UUID | str, *, approve: bool, decided_by: str, reason: str | None = None
    ) -> ApprovalRecord:
        """Approve or reject a pending approval; a decided or expired one cannot be decided again."""
        current = await self.get(approval_id)
        if current.status != "pending":
            raise ConflictError(f"Approval {str(current.id)[:8]} is {current.status} already.")
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(Approval)
                .where(
                    Approval.id == current.id,
                    Approval.status == "pending",
                    Approval.expires_at > datetime.now(UTC),
                )
                .values(
                    status="approved" if approve else "rejected",
                    decided_by=decided_by,
                    reason=reason,
                    decided_at=datetime.now(UTC),
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ConflictError(f"Approval {str(current.id)[:8]} was decided or expired a moment ago.")
        return await self.get(current.id)

    async def renew(self, approval_id: uuid.UUID | str, *, alive_for: float) -> None:
        """The requester still waits: keep its liveness mark fresh for ``alive_for`` more seconds."""
        await self._set_alive(approval_id, datetime.now(UTC) + timedelta(seconds=alive_for))

    async def release(self, approval_id: uuid.UUID | str) -> None:
        """The requester stopped waiting (done, cancelled, disconnected): a later approval runs detached."""
        await self._set_alive(approval_id, None)

    async def _set_alive(self, approval_id: uuid.UUID | str, until: datetime | None) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(Approval)
                .where(Approval.id == _parse_id(approval_id), Approval.runner.is_(None))
                .values(requester_alive_until=until)
            )

    async def claim_run(self, approval_id: uuid.UUID | str, runner: str) -> bool:
        """Claim the running of an approved call for ``runner`` ('requester' or 'detached'): exactly one
        claim succeeds, so the call runs once whoever asks first."""
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(Approval)
                .where(
                    Approval.id == _parse_id(approval_id),
                    Approval.status == "approved",
                    Approval.runner.is_(None),
                )
                .values(runner=runner, requester_alive_until=None)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def expire_overdue(self) -> int:
        """Mark pending approvals past their expiry as expired; return how many."""
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(Approval)
                .where(Approval.status == "pending", Approval.expires_at <= datetime.now(UTC))
                .values(status="expired")
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def _parse_id(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value.strip())
