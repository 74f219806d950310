"""What front doors show, read through the catalog's tools: the same policy, per-user visibility and
audit as a typed command, whichever front door (web chat, MCP resources, CLI) shows it.

``call_tool`` runs any tool as the person of a ``Turn`` and returns its structured result; ``read_tool``
is the same for read tools only (listings, status), so a display can never change anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from assistant.events import Failed, ToolFinished, Turn
from tools import Risk, ToolDefinition

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant

__all__ = ["ToolReadError", "call_tool", "read_model", "read_tool"]

M = TypeVar("M", bound=BaseModel)


class ToolReadError(Exception):
    """The tool gave no result (refused, failed, its agent unreachable); the message is a sentence for the
    person."""


async def call_tool(
    kommandant: Kommandant, tool: ToolDefinition, arguments: dict[str, Any], turn: Turn
) -> dict[str, Any]:
    """Run ``tool`` through ``Kommandant.run_tool`` as ``turn``'s person; its structured result, or
    ``ToolReadError`` with the sentence that says why there is none."""
    problem, structured = f"{tool.name} did not run.", None
    async for event in kommandant.run_tool(tool, arguments, turn):
        if isinstance(event, ToolFinished) and event.ok:
            structured = event.structured
        elif isinstance(event, Failed):
            problem = event.message
    if structured is None:
        raise ToolReadError(problem)
    return structured


async def read_tool(
    kommandant: Kommandant, tool: ToolDefinition, arguments: dict[str, Any], turn: Turn
) -> dict[str, Any]:
    """``call_tool`` for a read tool; a tool that could change something is a programming error here."""
    if tool.risk is not Risk.READ:
        raise ValueError(f"{tool.name} is a {tool.risk} tool, not a read tool")
    return await call_tool(kommandant, tool, arguments, turn)


async def read_model(
    kommandant: Kommandant, tool: ToolDefinition, arguments: dict[str, Any], turn: Turn, model: type[M]
) -> M:
    """``read_tool``'s result as the tool's output ``model`` (which its ``summary()`` can phrase)."""
    return model.model_validate(await read_tool(kommandant, tool, arguments, turn))
