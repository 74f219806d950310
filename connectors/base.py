"""The one interface every connector implements, and the health it reports.

A connector joins an outside platform (Slack, Notion, a webhook sender) to Kommandant. Inbound, it
turns the platform's events into turns (``Kommandant.handle``) or bus events; outbound, its actions are
catalog tools served by an agent. It never parses, decides policy or dispatches on its own.
The registry (``connectors.registry``) starts the configured connectors, asks each for its health every
30 s, restarts a failed one with backoff and jitter, and reports the state to the agent registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class HealthState(StrEnum):
    """Where a connector stands; the status view and the control panel show it."""

    STARTING = "starting"
    UP = "up"
    DOWN = "down"
    OFF = "off"  # not configured


@dataclass(frozen=True, slots=True)
class Health:
    """One health reading: the state, a sentence for people (never a secret), and when it was taken."""

    state: HealthState
    detail: str = ""
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@runtime_checkable
class Connector(Protocol):
    """A platform connection with a lifecycle. ``start`` connects (or raises ``ConnectorError``);
    ``health`` checks the platform cheaply (an auth or "who am I" call) and never raises; ``stop``
    closes everything ``start`` opened and may be called after a failed start."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def health(self) -> Health: ...


class ConnectorError(Exception):
    """A connector could not connect or act; the message is a sentence a person can read."""
