"""Stored results and leases by idempotency key, so a redelivered call never repeats its effect.

A side-effecting call claims its key (a lease) before its handler acts; storing the result ends the
lease. A redelivery that finds a live lease of another worker waits for the result; one that finds it
expired (that worker died mid-call) takes the lease over, and then only a ``repeatable`` tool runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import uuid4


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    """How long a worker's claim on a call lasts without renewal (it renews every third of that while
    the handler runs), and the name it claims under: one per bus, so two workers never share one."""

    seconds: float = 10.0
    holder: str = field(default_factory=_holder)
    poll: float = 0.2
    """Seconds between looks for the result while another worker's lease is live."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim on a key: the result stored under it already (``stored``: nothing to run);
    ours (``taken_over`` when it replaced an expired lease, whose call was cut off mid-run); or another
    worker's live lease that ends in ``wait`` seconds unless renewed."""

    ours: bool
    taken_over: bool = False
    wait: float = 0.0
    stored: dict[str, Any] | None = None


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
        """Store ``result`` unless ``key`` has one already (first writer wins), end the key's lease, and
        return what is stored."""
        ...

    async def claim(self, key: str, tool: str, holder: str, seconds: float) -> Claim:
        """The result stored under ``key``, if any; else lease ``key`` to ``holder`` for ``seconds`` unless
        another holder's lease is still live."""
        ...

    async def renew(self, key: str, holder: str, seconds: float) -> bool:
        """Extend ``holder``'s lease on ``key``; False when it is no longer theirs."""
        ...

    async def release(self, key: str, holder: str) -> None:
        """End ``holder``'s lease on ``key`` without a result (the call failed; a retry may claim it)."""
        ...


@dataclass(slots=True)
class _Lease:
    holder: str
    until: float
    takeovers: int = 0


class MemoryResultStore:
    """A ResultStore in this process's memory: idempotency within one process only."""

    def __init__(self) -> None:
        self._results: dict[str, dict[str, Any]] = {}
        self._leases: dict[str, _Lease] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored result for ``key``, or None."""
        return self._results.get(key)

    async def put(self, key: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store ``result`` unless ``key`` has one; end its lease; return what is stored."""
        self._leases.pop(key, None)
        return self._results.setdefault(key, result)  # atomic: no await between check and set

    async def claim(self, key: str, tool: str, holder: str, seconds: float) -> Claim:
        """The stored result, or a lease on ``key`` for ``holder`` unless another holder's is live."""
        if key in self._results:
            return Claim(ours=False, stored=self._results[key])
        now = time.monotonic()
        lease = self._leases.get(key)
        if lease is None:
            self._leases[key] = _Lease(holder, now + seconds)
            return Claim(ours=True)
        if lease.holder != holder and lease.until > now:
            return Claim(ours=False, wait=lease.until - now)
        taken_over = lease.holder != holder or lease.until <= now  # an expired lease: its call was cut off
        self._leases[key] = _Lease(holder, now + seconds, lease.takeovers + taken_over)
        return Claim(ours=True, taken_over=taken_over)

    async def renew(self, key: str, holder: str, seconds: float) -> bool:
        """Extend ``holder``'s lease on ``key``."""
        lease = self._leases.get(key)
        if lease is None or lease.holder != holder:
            return False
        lease.until = time.monotonic() + seconds
        return True

    async def release(self, key: str, holder: str) -> None:
        """End ``holder``'s lease on ``key``."""
        lease = self._leases.get(key)
        if lease is not None and lease.holder == holder:
            del self._leases[key]

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
