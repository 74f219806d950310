"""Tool results and call leases by idempotency key: a redelivered call returns the stored result instead
of acting twice, and waits while another worker's live lease says the call is under way there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bus.idempotency import Claim
from storage.models import CallLease, ToolResultRow


class PostgresResultStore:
    """The bus's ``ResultStore`` on ``tool_results`` and ``call_leases``; the first result of a key wins.
    Lease times are the database's clock, so workers on machines whose clocks differ agree on them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored result for ``key``, or None."""
        async with self._sessionmaker() as session:
            return await session.scalar(select(ToolResultRow.result).where(ToolResultRow.key == key))

    async def put(self, key: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store ``result`` unless a result for ``key`` exists, end the key's lease (one transaction), and
        return what is stored."""
        stmt = (
            insert(ToolResultRow)
            .values(key=key, tool=tool, result=result)
            .on_conflict_do_nothing(index_elements=[ToolResultRow.key])
            .returning(ToolResultRow.result)
        )
        async with self._sessionmaker() as session, session.begin():
            stored = await session.scalar(stmt)
            if stored is None:  # another delivery of the same call got there first
                stored = await session.scalar(select(ToolResultRow.result).where(ToolResultRow.key == key))
            await session.execute(delete(CallLease).where(CallLease.key == key))
        assert stored is not None
        return stored

    async def claim(self, key: str, tool: str, holder: str, seconds: float) -> Claim:
        """The result stored under ``key``, if any; else lease ``key`` to ``holder`` for ``seconds`` unless
        another holder's lease is live (an expired lease is taken over). One transaction."""
        until = func.now() + timedelta(seconds=seconds)
        fresh = (
            insert(CallLease)
            .values(key=key, tool=tool, holder=holder, expires_at=until)
            .on_conflict_do_nothing(index_elements=[CallLease.key])
            .returning(CallLease.key)
        )
        async with self._sessionmaker() as session, session.begin():
            stored = await session.scalar(select(ToolResultRow.result).where(ToolResultRow.key == key))
            if stored is not None:
                return Claim(ours=False, stored=stored)
            if await session.scalar(fresh) is not None:
                return Claim(ours=True)
            row = (
                await session.execute(
                    select(CallLease.holder, func.extract("epoch", CallLease.expires_at - func.now()))
                    .where(CallLease.key == key)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None:  # released between the two statements: the result is stored, or a retry claims
                return Claim(ours=False, wait=0.0)
            current, left = row[0], float(row[1])
            if current != holder and left > 0:
                return Claim(ours=False, wait=left)
            taken_over = current != holder or left <= 0  # an expired lease: its call was cut off
            await session.execute(
                update(CallLease)
                .where(CallLease.key == key)
                .values(holder=holder, expires_at=until, takeovers=CallLease.takeovers + int(taken_over))
            )
            return Claim(ours=True, taken_over=taken_over)

    async def renew(self, key: str, holder: str, seconds: float) -> bool:
        """Extend ``holder``'s lease on ``key``; False when it is no longer theirs."""
        stmt = (
            update(CallLease)
            .where(CallLease.key == key, CallLease.holder == holder)
            .values(expires_at=func.now() + timedelta(seconds=seconds))
            .returning(CallLease.key)
        )
        async with self._sessionmaker() as session, session.begin():
            return await session.scalar(stmt) is not None

    async def release(self, key: str, holder: str) -> None:
        """End ``holder``'s lease on ``key`` without a result."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(delete(CallLease).where(CallLease.key == key, CallLease.holder == holder))
