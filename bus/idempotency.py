"""Stored results by idempotency key, so a redelivered call never repeats its effect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ResultStore(Protocol):
    """Where workers keep the result of every call they finished, by idempotency key.

    ``storage.results.PostgresResultStore`` is the shared implementation; ``MemoryResultStore`` serves
    one process (the embedded mode, or a single worker).
    """

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored ToolResult (as a JSON dict) for ``key``, or None."""
        ...

    async def put(self, key: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store ``result`` unless ``key`` has one already (first writer wins); return what is stored."""
        ...


class MemoryResultStore:
    """A ResultStore in this process's memory: idempotency within one process only."""

    def __init__(self) -> None:
        self._results: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored result for ``key``, or None."""
        return self._results.get(key)

    async def put(self, key: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store ``result`` unless ``key`` has one; return what is stored."""
        return self._results.setdefault(key, result)  # atomic: no await between check and set

    def __len__(self) -> int:
        return len(self._results)


class KeyLocks:
    """One lock per idempotency key in this process: a redelivery that arrives while the first delivery
    still runs here (a connection cut mid-call) waits for its stored result instead of running again."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key`` for the duration of the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
