"""Bus fixtures: every contract test runs on LocalBus and on RabbitBus (unique prefix, deleted afterwards),
with the real Postgres result store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from bus import Bus, LocalBus, RabbitBus, ResultStore, Topology
from bus.rabbit import delete_topology
from storage import Database, PostgresResultStore

FAST = {"retries": 2, "retry_backoff": 0.02}
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], seconds: float = 5.0) -> T:
    """Poll ``check`` until it returns something truthy (state owned by a broker or a database)."""
    async with asyncio.timeout(seconds):
        while True:
            if value := await check():
                return value
            await asyncio.sleep(0.02)


@pytest.fixture
def store(db: Database) -> ResultStore:
    """The real idempotency store: ``tool_results`` in Postgres, emptied before each test."""
    return PostgresResultStore(db.sessionmaker)


class Network:
    """Buses that see each other: one LocalBus shared by everyone, or RabbitBus connections on one prefix."""

    def __init__(self, kind: str, store: ResultStore, url: str | None, prefix: str) -> None:
        self.kind, self.store, self.url, self.prefix = kind, store, url, prefix
        self.buses: list[Bus] = []
        self.options: dict[str, Any] = dict(FAST)

    async def bus(self, **options: Any) -> Bus:
        """A started bus: the shared LocalBus again, or a new RabbitBus connection on the same prefix."""
        if self.kind == "local" and self.buses:
            return self.buses[0]
        merged = {**self.options, **options, "result_store": self.store}
        bus: Bus
        if self.kind == "local":
            bus = LocalBus(**merged)
        else:
            assert self.url is not None
            bus = RabbitBus(self.url, prefix=self.prefix, reconnect_interval=0.2, **merged)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def close(self) -> None:
        agents: set[str] = set()
        for bus in self.buses:
            if isinstance(bus, RabbitBus):
                agents |= bus.known_agents
            await bus.close()
        if self.kind == "rabbit" and self.url is not None:
            await delete_topology(self.url, Topology(self.prefix), agents)


@pytest.fixture(params=["local", pytest.param("rabbit", marks=pytest.mark.rabbit)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="session")
async def network(
    bus_kind: str, store: ResultStore, request: pytest.FixtureRequest, bus_prefix: str
) -> AsyncIterator[Network]:
    url = request.getfixturevalue("amqp_url") if bus_kind == "rabbit" else None
    net = Network(bus_kind, store, url, bus_prefix)
    try:
        yield net
    finally:
        await net.close()


@pytest_asyncio.fixture(loop_scope="session")
async def bus(network: Network) -> Bus:
    """The caller's bus (for LocalBus, also the workers' bus)."""
    return await network.bus()
