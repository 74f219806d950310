"""What an MCP client hears while its call runs: log notifications at the level it chose with
``logging/setLevel``, and progress notifications when it sent a progress token.

Both are made only from the events of the caller's own turn (``Kommandant.run_tool`` or ``handle`` for
that call), so a client never hears of another person's calls. They name tools, agents, durations and the
core's sentences, never the call's arguments.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from mcp import types
from mcp.server.fastmcp import Context
from mcp.server.session import ServerSession

from assistant.events import (
    ApprovalResolved,
    Event,
    Failed,
    IntentRecognized,
    ToolFinished,
    ToolStarted,
)

log = logging.getLogger(__name__)

LEVELS: tuple[types.LoggingLevel, ...] = (
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency",
)  # fmt: skip
"""The MCP (syslog) levels, least severe first."""
DEFAULT_LEVEL: types.LoggingLevel = "notice"
"""What a client that never sent ``logging/setLevel`` hears: approvals waiting, warnings and worse."""
LOGGER = "kommandant"


def event_notice(event: Event) -> tuple[types.LoggingLevel, str] | None:
    """The log level and sentence an event of the caller's turn is told with, or None for none (an
    approval that waits is told by the server, which knows where it can be decided)."""
    match event:
        case IntentRecognized(tool=tool, confidence=confidence, source=source):
            return "info", f"Understood as {tool} ({confidence:.0%}, {source})."
        case ToolStarted(tool=tool, agent=agent):
            return "info", f"Running {tool} on the {agent} agent."
        case ToolFinished(tool=tool, ok=True, duration_ms=ms):
            return "info", f"{tool} finished in {ms:.0f} ms."
        case ToolFinished(tool=tool, ok=False, text=text):
            return "warning", f"{tool} failed: {text}"
        case ApprovalResolved(approval_id=approval_id, tool=tool, status=status):
            return "notice", f"Approval {approval_id[:8]} for {tool}: {status}."
        case Failed(message=message):
            return "warning", message
    return None


class ClientLog:
    """The minimum log level of each client session (``logging/setLevel``), and sending to it."""

    def __init__(self) -> None:
        self._levels: weakref.WeakKeyDictionary[ServerSession, types.LoggingLevel] = (
            weakref.WeakKeyDictionary()
        )

    def set_level(self, session: ServerSession, level: types.LoggingLevel) -> None:
        """Honour ``logging/setLevel``: from now on this session hears ``level`` and more severe."""
        self._levels[session] = level

    def wants(self, session: ServerSession, level: types.LoggingLevel) -> bool:
        """Whether the session hears messages of ``level``."""
        return LEVELS.index(level) >= LEVELS.index(self._levels.get(session, DEFAULT_LEVEL))

    async def send(self, ctx: Context[Any, Any, Any], level: types.LoggingLevel, message: str) -> None:
        """A log notification to the calling client, on its request's stream; losing it (the client
        went away) must not fail the call."""
        session = ctx.request_context.session
        if not self.wants(session, level):
            return
        try:
            await session.send_log_message(level, message, LOGGER, related_request_id=ctx.request_id)
        except Exception:  # the call goes on without its listener
            log.debug("could not send a log notification", exc_info=True)

    async def tell(
        self, ctx: Context[Any, Any, Any], level: types.LoggingLevel, message: str, step: int
    ) -> None:
        """Tell the client about a step of its call: a log message, and progress number ``step`` when
        the client asked for progress."""
        await self.send(ctx, level, message)
        if ctx.request_context.meta is not None and ctx.request_context.meta.progressToken is not None:
            try:
                await ctx.report_progress(step, None, message)
            except Exception:  # as for log messages: the call goes on
                log.debug("could not send a progress notification", exc_info=True)


__all__ = ["DEFAULT_LEVEL", "LEVELS", "LOGGER", "ClientLog", "event_notice"]
