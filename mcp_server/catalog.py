"""MCP tool descriptions from the catalog, and the ``ask`` tool that runs a whole turn."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from mcp import types
from pydantic import BaseModel, ConfigDict, Field

from assistant.result import TurnResult
from tools import Risk, ToolDefinition
from tools.external import declared_output_schema


class AskInput(BaseModel):
    """Arguments of ``ask``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(
        min_length=1,
        max_length=10_000,
        description="What to ask or tell Kommandant, e.g. 'remind me to stretch in ten minutes'.",
    )
    thread: str | None = Field(
        default=None,
        max_length=200,
        description="A conversation id: follow-ups such as 'stop it' resolve within one thread.",
    )


ASK = types.Tool(
    name="ask",
    title="Ask Kommandant",
    description=(
        "Run one Kommandant turn from plain language, as if typed in its chat: it recognises the commands "
        "(several in one sentence run in order), runs them with the usual approvals, and replies."
    ),
    inputSchema=AskInput.model_json_schema(),
    outputSchema=TurnResult.model_json_schema(),
    annotations=types.ToolAnnotations(title="Ask Kommandant", readOnlyHint=False, openWorldHint=False),
)


def mcp_tool(tool: ToolDefinition) -> types.Tool:
    """The MCP description of a catalog tool: its schemas, and hints from its risk."""
    return types.Tool(
        name=tool.name,
        description=tool.description + _risk_note(tool.risk),
        inputSchema=tool.input_schema(),
        outputSchema=declared_output_schema(tool),
        annotations=types.ToolAnnotations(
            readOnlyHint=tool.risk is Risk.READ,
            destructiveHint=tool.risk is Risk.DANGEROUS,
            idempotentHint=tool.risk is Risk.READ,
            openWorldHint=False,
        ),
        _meta={"kommandant/agent": tool.agent, "kommandant/risk": str(tool.risk)},
    )


def instructions(tools: Iterable[ToolDefinition]) -> str:
    """The server's ``instructions``: what Kommandant is and how to use it, naming the agents whose tools
    are there now (outside MCP servers attached as agents included)."""
    per_agent = Counter(tool.agent for tool in tools)
    agents = ", ".join(f"{agent} ({count})" for agent, count in sorted(per_agent.items()))
    return (
        "Kommandant is a personal assistant with memory, reminders, a knowledge base, bots and schedules. "
        "Call its tools directly, or use `ask` with a plain-language request. Dangerous tools wait for a "
        "person's approval before they run. "
        + (f"Tools by agent (how many): {agents}. " if agents else "")
        + "The prompts offer common tasks; their arguments complete from live names (bots, schedules, "
        "reminders, documents)."
    )


def _risk_note(risk: Risk) -> str:
    if risk is Risk.DANGEROUS:
        return " (Dangerous: waits for a person's approval before it runs.)"
    return ""
