"""Scheduler fixtures: settings on either bus, schedules made by the real scheduler agent, run counts read
from Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pydantic import BaseModel, SecretStr
from sqlalchemy import text

from agents import BUILTIN_AGENTS
from bus import Bus, CallerRole, ToolCall
from settings import Settings
from storage import Database

TICK = {"tool": "reminders_create", "arguments": {"text": "tick", "due": "2030-01-01T00:00:00Z"}}
"""A scheduled command whose every run leaves one row (a reminder) to count."""


@pytest_asyncio.fixture(loop_scope="session", params=["local", "rabbit"])
async def bus_settings(
    request: pytest.FixtureRequest, settings: Settings, bus_prefix: str
) -> AsyncIterator[Settings]:
    """The test's settings on the in-process bus or on RabbitMQ (a unique prefix, removed afterwards)."""
    configured = settings.model_copy(update={"call_timeout": 10.0, "heartbeat_interval": 0.5})
    if request.param == "rabbit":
        configured = rabbit(configured, request.getfixturevalue("amqp_url"), bus_prefix)
    yield configured
    if request.param == "rabbit":
        await delete_topology(configured)


def rabbit(settings: Settings, url: str, prefix: str) -> Settings:
    return settings.model_copy(update={"amqp_url": SecretStr(url), "bus_prefix": prefix})


async def delete_topology(settings: Settings) -> None:
    from bus.rabbit import Topology, delete_topology

    assert settings.amqp_url is not None
    agents = [*BUILTIN_AGENTS, "napper"]  # and the slow test agent of test_concurrency
    await delete_topology(settings.amqp_url.get_secret_value(), Topology(settings.bus_prefix), agents)


async def create_schedule(
    bus: Bus,
    *,
    user: str = "ann",
    role: CallerRole = "operator",
    command: list[dict[str, Any]] | None = None,
    **arguments: Any,
) -> dict[str, Any]:
    """Create a schedule through the scheduler agent, its stored command given (the Kommandant's part)."""
    arguments = {"target": "note a tick", "command": command or [TICK], **arguments}
    call = ToolCall.create("schedules_create", arguments, timeout=10, user=user, role=role, channel="test")
    result = await bus.call("scheduler", call)
    assert not result.is_error, result.text
    assert result.result.structuredContent is not None
    return result.result.structuredContent["schedule"]


async def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.sessionmaker() as session:
        return list((await session.execute(text(sql), params)).all())


async def execute(db: Database, sql: str, **params: Any) -> None:
    async with db.sessionmaker() as session, session.begin():
        await session.execute(text(sql), params)


class Done(BaseModel):
    text: str

    def summary(self) -> str:
        return self.text
