"""The agent base: a named set of tool handlers, registered explicitly, plus an optional lifecycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bus import CallerRole
from tools import ToolDefinition, builtin_catalog

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
    role: CallerRole = "viewer"
    """The asking person's role; a call that names none is a viewer's (never more)."""
    idempotency_key: str = ""
    """Calls with the same key act once: a repeatable tool keys its effect by it."""


class Agent:
    """Subclasses set ``name`` and ``description`` and call ``self.register`` with the definition of each
    tool they serve (``self.register(memory.REMEMBER, self.remember)``)."""

    name: str = ""
    description: str = ""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._handlers: dict[str, ToolHandler] = {}

    def register(self, tool: ToolDefinition | str, handler: ToolHandler) -> None:
        """Serve ``tool`` (its definition; a name only where it comes from data) with ``handler``; the tool
        must be in the catalog and owned by this agent."""
        name = tool if isinstance(tool, str) else tool.name
        definition = self.services.catalog.get(name)
        if definition.agent != self.name:
            raise ValueError(f"tool {name} belongs to agent {definition.agent}, not {self.name}")
        if name in self._handlers:
            raise ValueError(f"agent {self.name} registers {name} twice")
        self._handlers[name] = handler

    @classmethod
    def embeds_text(cls) -> bool:
        """Whether a built-in tool of this agent turns text into vectors, so a worker serving it loads the
        embedding model at start."""
        return builtin_catalog().embeds_text([cls.name])

    @property
    def handlers(self) -> dict[str, ToolHandler]:
        return dict(self._handlers)

    async def start(self) -> None:
        """Start background work (timers, loops). Called once the agent serves its queue."""

    async def stop(self) -> None:
        """Stop background work."""
