"""The bus contract (RPC tool calls, serving, events, dead letters); LocalBus and RabbitBus fulfil it."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self

from bus.messages import DeadLetter, Event, ToolCall, ToolResult

Handler = Callable[[ToolCall], Awaitable[ToolResult]]
"""Serves one call. Raise ``PermanentError`` when a retry cannot help; any other exception is retried."""


class Serving(ABC):
    """A running consumer of one agent's queue, returned by ``Bus.serve``."""

    agent: str

    @abstractmethod
    async def stop(self, drain: bool = True, grace: float | None = None) -> None:
        """Stop taking calls. ``drain``: finish the calls under way first; otherwise they are requeued.
        ``grace``: the most seconds draining may take; calls still running then are requeued."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class Subscription(ABC):
    """Events whose topic matches a pattern: ``async with bus.subscribe("tool.#") as events:``, then iterate.

    Events published before ``__aenter__`` returns are not seen; the subscription is live once entered.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._events: asyncio.Queue[Event] = asyncio.Queue()

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        return await self._events.get()

    async def get(self, timeout: float | None = None) -> Event:  # noqa: ASYNC109
        """The next event; ``TimeoutError`` when none arrives within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            return await self._events.get()

    def _deliver(self, event: Event) -> None:
        self._events.put_nowait(event)


class Bus(ABC):
    """One message bus: ``async with bus:`` starts and closes it."""

    @abstractmethod
    async def start(self) -> None:
        """Connect and declare the topology (idempotent)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every serving (draining it) and disconnect."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def call(
        self,
        agent: str,
        call: ToolCall,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ToolResult:
        """Send ``call`` to ``agent`` and wait for its result until the call's deadline (or ``timeout``).

        Raises ``CallTimeout`` when the deadline passes, ``BusUnavailable`` when the broker is down and not
        back in time or the connection is lost mid-call, ``MessageTooLarge`` when the call is too big.
        A handler failure after its retries comes back as an error ``ToolResult``, not an exception.
        """

    @abstractmethod
    async def serve(self, agent: str, handler: Handler, *, concurrency: int = 8) -> Serving:
        """Serve ``agent``'s calls with ``handler``; several servings of one agent share the load."""

    @abstractmethod
    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Send an event to every subscriber whose pattern matches ``topic``."""

    @abstractmethod
    def subscribe(self, pattern: str) -> Subscription:
        """Events matching ``pattern`` ('*' one word, '#' any words) from when the subscription is entered."""

    @abstractmethod
    async def enqueue(self, agent: str, body: bytes, *, message_id: str | None = None) -> None:
        """Put an already encoded message on ``agent``'s queue with nobody waiting for a reply.

        For replays and bridges; a body that is not a valid ``ToolCall`` is dead-lettered as poison.
        """

    @abstractmethod
    async def queue_depths(self, agents: Iterable[str]) -> dict[str, int]:
        """Messages waiting on each of these agents' queues, not yet taken by a worker (0 for an agent
        whose queue holds none or does not exist yet); one entry per agent asked about."""

    @abstractmethod
    async def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """The dead letters, oldest first, without removing them."""

    @abstractmethod
    async def replay(self, ids: Iterable[str] | None = None) -> int:
        """Send dead-lettered calls (all, or those with these ids) to their agents again, as attempt 1 with
        a fresh deadline; return how many. Bodies that are not calls stay in the dead-letter queue."""

    @abstractmethod
    async def purge(self, ids: Iterable[str] | None = None) -> int:
        """Delete dead letters (all, or those with these ids); return how many."""
