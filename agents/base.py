"""The agent base: a named set of tool handlers, registered explicitly, plus an optional lifecycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from agents.services import Services

ToolHandler = Callable[[Any, "CallContext"], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who asked for a call and where, passed to every handler."""

    call_id: str
    user: str
    channel: str
    thread: str | None


class Agent:
    """Subclasses set ``name`` and ``description`` and call ``self.register`` for each tool they serve."""

    name: str = ""
    description: str = ""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._handlers: dict[str, ToolHandler] = {}

    def register(self, tool: str, handler: ToolHandler) -> None:
        """Serve ``tool`` with ``handler``; the tool must be in the catalog and owned by this agent."""
        definition = self.services.catalog.get(tool)
        if definition.agent != self.name:
            raise ValueError(f"tool {tool} belongs to agent {definition.agent}, not {self.name}")
        if tool in self._handlers:
            raise ValueError(f"agent {self.name} registers {tool} twice")
        self._handlers[tool] = handler

    @property
    def handlers(self) -> dict[str, ToolHandler]:
        return dict(self._handlers)

    async def start(self) -> None:
        """Start background work (timers, loops). Called once the agent serves its queue."""

    async def stop(self) -> None:
        """Stop background work."""
