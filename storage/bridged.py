"""Tools of outside MCP servers attached as bridge agents, kept so every Kommandant process can list them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import BridgedTool
from storage.records import Record


class BridgedToolRecord(Record):
    """One outside tool under its namespaced Kommandant name."""

    name: str
    agent: str
    remote_name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    risk: str
    updated_at: datetime


class BridgedToolRepository:
    """A bridge agent publishes its tools here at start; front doors read them to extend their catalog."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def publish(self, agent: str, tools: list[dict[str, Any]]) -> None:
        """Replace ``agent``'s tools with ``tools`` (dicts with the record's fields but ``updated_at``)."""
        async with self._sessionmaker() as session, session.begin():
            names = [t["name"] for t in tools]
            await session.execute(
                delete(BridgedTool).where(BridgedTool.agent == agent, BridgedTool.name.not_in(names))
            )
            for tool in tools:
                stmt = insert(BridgedTool).values(**tool)
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[BridgedTool.name],
                        set_={**{k: v for k, v in tool.items() if k != "name"}, "updated_at": func.now()},
                    )
                )

    async def all(self) -> list[BridgedToolRecord]:
        """Every bridged tool, by name."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(select(BridgedTool).order_by(BridgedTool.name))
            return [BridgedToolRecord.model_validate(r) for r in rows]
