"""Tool results and call leases by idempotency key: a redelivered call returns the stored result instead
of acting twice, and waits while another worker's live lease says the call is under way there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import String, bindparam, column, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bus.idempotency import Claim
from storage.models import CallLease, ToolResultRow

_CLAIM = text(
    """
    WITH stored AS (SELECT result FROM tool_results WHERE key = :key),
    fresh AS (
        INSERT INTO call_leases (key, tool, holder, expires_at)
        SELECT :key, :tool, :holder, now() + make_interval(secs => :seconds)
        WHERE NOT EXISTS (SELECT 1 FROM stored)
        ON CONFLICT (key) DO NOTHING
        RETURNING key
    )
    SELECT (SELECT result FROM stored) AS stored, (SELECT key FROM fresh) AS fresh
    """
).columns(column("stored", JSONB), column("fresh", String))
"""The stored result, else a fresh lease: one statement, the common case of every side-effecting call."""

_PUT = (
    text(
        """
    WITH inserted AS (
        INSERT INTO tool_results (key, tool, result) VALUES (:key, :tool, :result)
        ON CONFLICT (key) DO NOTHING
        RETURNING result
    ),
    ended AS (DELETE FROM call_leases WHERE key = :key)
    SELECT coalesce(
        (SELECT result FROM inserted), (SELECT result FROM tool_results WHERE key = :key)
    ) AS stored
    """
    )
    .bindparams(bindparam("result", type_=JSONB))
    .columns(column("stored", JSONB))
)
"""Store the result unless one is stored (first writer wins), end the lease, return what is stored."""


class PostgresResultStore:
    """The bus's ``ResultStore`` on ``tool_results`` and ``call_leases``; the first result of a key wins.
    Lease times are the database's clock, so workers on machines whose clocks differ agree on them. The
    common path is one SQL statement per step on a bare connection: every side-effecting call pays it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        engine = sessionmaker.kw["bind"]
        assert isinstance(engine, AsyncEngine)
        self._engine = engine

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored result for ``key``, or None."""
        async with self._engine.connect() as conn:
            stored: dict[str, Any] | None = await conn.scalar(
                select(ToolResultRow.result).where(ToolResultRow.key == key)
            )
            return stored

    async def put(self, key: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store ``result`` unless a result for ``key`` exists, end the key's lease (one statement), and
        return what is stored."""
        async with self._engine.begin() as conn:
            stored: dict[str, Any] | None = await conn.scalar(
                _PUT, {"key": key, "tool": tool, "result": result}
            )
        assert stored is not None
        return stored

    async def claim(self, key: str, tool: str, holder: str, seconds: float) -> Claim:
        """The result stored under ``key``, if any; else lease ``key`` to ``holder`` for ``seconds`` unless
        another holder's lease is live (an expired lease is taken over)."""
        async with self._engine.begin() as conn:
            found = (
                await conn.execute(_CLAIM, {"key": key, "tool": tool, "holder": holder, "seconds": seconds})
            ).one()
            if found.stored is not None:
                return Claim(ours=False, stored=found.stored)
            if found.fresh is not None:
                return Claim(ours=True)
            row = (
                await conn.execute(
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
            taken_over = left <= 0  # an expired lease, another's or our own: its call was cut off
            await conn.execute(
                update(CallLease)
                .where(CallLease.key == key)
                .values(
                    holder=holder,
                    expires_at=func.now() + timedelta(seconds=seconds),
                    takeovers=CallLease.takeovers + int(taken_over),
                )
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
        async with self._engine.begin() as conn:
            return await conn.scalar(stmt) is not None

    async def release(self, key: str, holder: str) -> None:
        """End ``holder``'s lease on ``key`` without a result."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(CallLease).where(CallLease.key == key, CallLease.holder == holder))
