"""The connector registry: starts the configured connectors, checks each one's health, restarts a failed
one with exponential backoff and jitter, and reports its state to the agent registry.

A connector shows in the status view (the system status tool) as the agent ``connector:<name>``: while it is
up its replica sends heartbeats; when it goes down the replica is marked stopped at once, so the view
says "down" without waiting for a heartbeat to age. Each reading is also kept in ``connector_states``
and published on the bus as ``connector.<state>.<name>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bus import Bus
from connectors.base import Connector, Health, HealthState
from storage import Database
from storage.connectors import ConnectorStates
from storage.registry import AgentRegistry

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 10.0
"""Seconds a health check may take before it counts as down."""


def agent_name(connector: Connector) -> str:
    """The name a connector has in the agent registry and the status view."""
    return f"connector:{connector.name}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before the n-th restart: ``base`` doubled per failure up to ``cap``, then a random part of
    it (between half and all), so replicas that lost the same platform do not retry in step."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, failures: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait after ``failures`` failures in a row (1 or more)."""
        ceiling = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return rng(ceiling / 2, ceiling)


class ConnectorRegistry:
    """``async with ConnectorRegistry(connectors, database, bus):`` supervises each connector until the
    block ends, then stops them and marks them stopped.

    ``check_seconds``: between health checks (``KOMMANDANT_CONNECTOR_CHECK_SECONDS``, 30 s);
    ``heartbeat_seconds``: between heartbeats while up (``KOMMANDANT_HEARTBEAT_INTERVAL``).
    """

    def __init__(
        self,
        connectors: Sequence[Connector],
        database: Database,
        bus: Bus | None = None,
        *,
        check_seconds: float = 30.0,
        heartbeat_seconds: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        names = [c.name for c in connectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"connectors registered twice: {', '.join(duplicates)}")
        self.connectors = list(connectors)
        self.check_seconds = check_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.backoff = backoff or Backoff()
        self._bus = bus
        self._agents = AgentRegistry(database.sessionmaker)
        self._states = ConnectorStates(database.sessionmaker)
        self._health: dict[str, Health] = {c.name: Health(HealthState.STARTING) for c in connectors}
        self._instances = {
            c.name: f"{agent_name(c)}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            for c in connectors
        }
        self._tasks: list[asyncio.Task[None]] = []

    def health(self, name: str) -> Health:
        """The last reading of connector ``name`` in this process."""
        return self._health[name]

    def get(self, name: str) -> Connector | None:
        """The connector called ``name``, if registered."""
        return next((c for c in self.connectors if c.name == name), None)

    async def __aenter__(self) -> ConnectorRegistry:
        for connector in self.connectors:
            task = asyncio.create_task(self._supervise(connector), name=f"connector-{connector.name}")
            self._tasks.append(task)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for connector in self.connectors:
            await self._stop(connector)
            with contextlib.suppress(Exception):
                await self._agents.stopped(self._instances[connector.name])
                await self._states.record(connector.name, HealthState.OFF, "stopped", 0)

    async def _supervise(self, connector: Connector) -> None:
        """Start, watch, and restart one connector for as long as the registry runs."""
        beating = asyncio.create_task(self._heartbeats(connector), name=f"connector-beat-{connector.name}")
        try:
            await self._keep_running(connector)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _keep_running(self, connector: Connector) -> None:
        failures = 0
        while True:
            try:
                await connector.start()
            except Exception as err:  # a connector's start may fail in any way; it is retried, not fatal
                failures += 1
                detail = str(err) or type(err).__name__
                await self._report(
                    connector, Health(HealthState.DOWN, f"could not start: {detail}"), failures
                )
                await self._stop(connector)
                await asyncio.sleep(self.backoff.delay(failures))
                continue
            health = await self._watch(connector)
            failures = 1
            await self._report(connector, health, failures)
            await self._stop(connector)
            await asyncio.sleep(self.backoff.delay(failures))

    async def _watch(self, connector: Connector) -> Health:
        """While the connector stays up, a health check every ``check_seconds``; returns the first reading
        that is not up."""
        while True:
            health = await self._check(connector)
            if health.state is not HealthState.UP:
                return health
            await self._report(connector, health, 0)
            await asyncio.sleep(self.check_seconds)

    async def _heartbeats(self, connector: Connector) -> None:
        """A heartbeat every ``heartbeat_seconds`` while the last reading is up, also while a slow health
        check runs (the status view would show a connector down whose check merely takes long)."""
        instance = self._instances[connector.name]
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            if self._health[connector.name].state is HealthState.UP:
                try:
                    await self._agents.heartbeat(instance)
                except Exception:  # a database blip; the next beat retries
                    log.debug("heartbeat of connector %s failed", connector.name, exc_info=True)

    async def _check(self, connector: Connector) -> Health:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                return await connector.health()
        except TimeoutError:
            return Health(HealthState.DOWN, f"no health answer within {HEALTH_TIMEOUT:g} s")
        except Exception as err:  # health() should not raise; if it does, the connector counts as down
            log.warning("health check of connector %s raised", connector.name, exc_info=True)
            return Health(HealthState.DOWN, f"health check failed: {type(err).__name__}")

    async def _report(self, connector: Connector, health: Health, failures: int) -> None:
        """Keep the reading, tell the agent registry (up: running with a fresh heartbeat; else stopped),
        and log a change of state."""
        name, instance = connector.name, self._instances[connector.name]
        before = self._health.get(name)
        self._health[name] = health
        changed = before is None or before.state is not health.state
        if changed:
            level = logging.INFO if health.state is HealthState.UP else logging.WARNING
            log.log(level, "connector %s is %s: %s", name, health.state, health.detail)
        try:
            if health.state is HealthState.UP:
                await self._agents.announce(
                    agent_name(connector),
                    description=f"The {name} connector.",
                    tools=[],
                    instance_id=instance,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                )
            else:
                await self._agents.stopped(instance)
            await self._states.record(name, health.state, health.detail, failures)
            if changed and self._bus is not None:
                payload = {"connector": name, "state": str(health.state), "detail": health.detail}
                await self._bus.publish(f"connector.{health.state}.{name}", payload)
        except Exception:  # the database or broker blipped; the next reading reports again
            log.warning("could not record the state of connector %s", name, exc_info=True)

    async def _stop(self, connector: Connector) -> None:
        try:
            await connector.stop()
        except Exception:
            log.warning("stopping connector %s failed", connector.name, exc_info=True)
