"""What resources and completions need of the MCP server, and reading a tool's result as the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from assistant.events import Turn
from assistant.reads import read_tool
from mcp_server.auth import Caller
from tools import ToolDefinition

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant


class Host(Protocol):
    """The running Kommandant and who is calling."""

    @property
    def kommandant(self) -> Kommandant: ...

    def caller(self) -> Caller: ...


async def read_as_caller(host: Host, tool: ToolDefinition, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a read tool as the caller (the same policy, visibility and audit as a tool call) and return
    its structured result; ``ToolReadError`` (its sentence, which the MCP client sees) if there is none."""
    caller = host.caller()
    turn = Turn(text=f"[mcp resource] {tool.name}", user=caller.user, channel="mcp", role=caller.role)
    return await read_tool(host.kommandant, tool, arguments, turn)
