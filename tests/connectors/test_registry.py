"""The connector registry: restarts with backoff and jitter, and health shown in the status view."""

from __future__ import annotations

import asyncio
from typing import Any

from assistant.events import ToolFinished, Turn
from connectors import Backoff, ConnectorError, ConnectorRegistry, Health, HealthState
from storage import Database
from storage.connectors import ConnectorStates
from tests.connectors.conftest import Stack


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    lowest = [backoff.delay(n, rng=lambda low, high: low) for n in range(1, 7)]
    highest = [backoff.delay(n, rng=lambda low, high: high) for n in range(1, 7)]
    assert highest == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert lowest == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len({backoff.delay(3) for _ in range(20)}) > 1, "jitter spreads the restarts"


class Flaky:
    """A connector whose platform refuses the first ``refusals`` starts."""

    name = "flaky"

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.starts = 0
        self.stops = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.refusals:
            raise ConnectorError("the platform said no")

    async def stop(self) -> None:
        self.stops += 1

    async def health(self) -> Health:
        return Health(HealthState.UP, "fine")


async def test_a_failing_start_is_retried_until_it_comes_up(db: Database) -> None:
    flaky = Flaky(refusals=2)
    registry = ConnectorRegistry([flaky], db, check_seconds=0.1, heartbeat_seconds=0.05,
                                 backoff=Backoff(base=0.02, cap=0.05))  # fmt: skip
    async with registry:
        async with asyncio.timeout(5):
            while registry.health("flaky").state is not HealthState.UP:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert flaky.starts == 3 and flaky.stops == 2, "each failed start is cleaned up, then retried"
    [state] = await ConnectorStates(db.sessionmaker).all()
    assert (state.name, state.state) == ("flaky", "off")


async def connector_alive(stack: Stack, name: str) -> bool | None:
    """What the status view (``system_status``, as an admin asks it) says of one connector."""
    assert stack.runtime.kommandant is not None and stack.runtime.services is not None
    tool = stack.runtime.services.catalog.get("system_status")
    turn = Turn(text="status", user="root", channel="cli", role="admin")
    events = [e async for e in stack.runtime.kommandant.run_tool(tool, {}, turn)]
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.structured is not None
    agents: list[dict[str, Any]] = finished.structured["agents"]
    return next((a["alive"] for a in agents if a["name"] == f"connector:{name}"), None)


async def wait_alive(stack: Stack, name: str, alive: bool) -> None:
    """Until the status view shows the connector ``alive`` and the registry's reading agrees."""
    assert stack.hub.registry is not None
    registry, state = stack.hub.registry, HealthState.UP if alive else HealthState.DOWN
    async with asyncio.timeout(10):
        while True:
            if await connector_alive(stack, name) is alive and registry.health(name).state is state:
                return
            await asyncio.sleep(0.1)


async def test_slack_shows_down_while_its_server_is_gone_and_up_when_it_returns(stack: Stack) -> None:
    await wait_alive(stack, "slack", True)
    await wait_alive(stack, "webhooks", True)
    await stack.slack.stop()
    await wait_alive(stack, "slack", False)
    assert stack.hub.registry is not None
    assert stack.hub.registry.health("slack").state is HealthState.DOWN
    assert await connector_alive(stack, "webhooks") is True, "one connector going down leaves the others"
    await stack.slack.start()  # the same port again
    await wait_alive(stack, "slack", True)
    assert stack.hub.registry.health("slack").state is HealthState.UP
    assert stack.runtime.services is not None
    states = {s.name: s for s in await ConnectorStates(stack.runtime.services.database.sessionmaker).all()}
    assert states["slack"].state == "up" and "signed in as kommandant" in states["slack"].detail
