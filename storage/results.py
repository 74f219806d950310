"""Tool results by idempotency key: a redelivered call returns the stored result instead of acting twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import ToolResultRow


class PostgresResultStore:
    """The bus's ``ResultStore`` on the ``tool_results`` table; the first writer of a key wins."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored result for ``key``, or None."""
        async with self._sessionmaker() as session:
            return await session.scalar(select(ToolResultRow.result).where(ToolResultRow.key == key))

    async def put(self, key: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store ``result`` unless a result for ``key`` exists; return what is stored."""
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
        assert stored is not None
        return stored
