"""The agent registry: which agents exist, which tools they serve, which replicas are alive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Agent, AgentInstance
from storage.records import AgentInstanceRecord, AgentRecord


class AgentRegistry:
    """Agents announce themselves and send heartbeats; a replica is alive while its heartbeat is fresh."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def announce(
        self, name: str, *, description: str, tools: list[str], instance_id: str, host: str, pid: int
    ) -> None:
        """Record the agent's capabilities and register this replica as running."""
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            stmt = insert(Agent).values(name=name, description=description, tools=tools, updated_at=now)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Agent.name],
                    set_={"description": description, "tools": tools, "updated_at": now},
                )
            )
            inst = insert(AgentInstance).values(
                instance_id=instance_id,
                agent=name,
                host=host,
                pid=pid,
                status="running",
                started_at=now,
                last_heartbeat_at=now,
            )
            await session.execute(
                inst.on_conflict_do_update(
                    index_elements=[AgentInstance.instance_id],
                    set_={"status": "running", "last_heartbeat_at": now},
                )
            )

    async def heartbeat(self, instance_id: str) -> None:
        """Refresh a replica's heartbeat."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(AgentInstance)
                .where(AgentInstance.instance_id == instance_id)
                .values(last_heartbeat_at=datetime.now(UTC), status="running")
            )

    async def stopped(self, instance_id: str) -> None:
        """Mark a replica as stopped (a clean shutdown)."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(AgentInstance).where(AgentInstance.instance_id == instance_id).values(status="stopped")
            )

    async def agents(self) -> list[AgentRecord]:
        """Every known agent with its replicas, newest heartbeat first."""
        async with self._sessionmaker() as session:
            agents = (await session.scalars(select(Agent).order_by(Agent.name))).all()
            instances = (
                await session.scalars(select(AgentInstance).order_by(AgentInstance.last_heartbeat_at.desc()))
            ).all()
        by_agent: dict[str, list[AgentInstanceRecord]] = {}
        for inst in instances:
            by_agent.setdefault(inst.agent, []).append(AgentInstanceRecord.model_validate(inst))
        return [
            AgentRecord(
                name=a.name,
                description=a.description,
                tools=list(a.tools),
                instances=by_agent.get(a.name, []),
            )
            for a in agents
        ]

    async def prune(self, older_than: timedelta) -> int:
        """Forget replicas whose last heartbeat is older than ``older_than``."""
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(AgentInstance).where(AgentInstance.last_heartbeat_at < datetime.now(UTC) - older_than)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
