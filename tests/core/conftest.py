"""A whole Kommandant (real database, real bus, every built-in agent) on each bus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from agents import BUILTIN_AGENTS
from assistant.runtime import Runtime
from settings import Settings
from storage import Database


@pytest_asyncio.fixture(loop_scope="session", params=["local", "rabbit"])
async def runtime(
    request: pytest.FixtureRequest, db: Database, settings: Settings, bus_prefix: str
) -> AsyncIterator[Runtime]:
    overrides: dict[str, object] = {"heartbeat_interval": 0.5, "call_timeout": 10.0}
    if request.param == "rabbit":
        overrides.update(amqp_url=SecretStr(request.getfixturevalue("amqp_url")), bus_prefix=bus_prefix)
    configured = settings.model_copy(update=overrides)
    async with Runtime(configured, agents=list(BUILTIN_AGENTS), database=db) as rt:
        yield rt
    if request.param == "rabbit":
        await _delete_topology(configured)


async def _delete_topology(settings: Settings) -> None:
    """Remove this test's exchanges and queues from the shared broker."""
    from agents.bots.agent import executor_queue
    from bus.rabbit import Topology, delete_topology

    assert settings.amqp_url is not None
    queues = [*BUILTIN_AGENTS, executor_queue(settings.bots_host)]  # the bot executor's own queue too
    await delete_topology(settings.amqp_url.get_secret_value(), Topology(settings.bus_prefix), queues)
