"""MCP tool descriptions from the catalog, and the ``ask`` tool that runs a whole turn."""

from __future__ import annotations

from typing import Any

from mcp import types
from pydantic import BaseModel, ConfigDict, Field

from assistant.events import ApprovalResolved, Event, IntentRecognized, ReplyDone, ToolFinished
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


class AskIntent(BaseModel):
    """A command recognised in the request."""

    tool: str = Field(description="The tool it maps to.")
    arguments: dict[str, Any] = Field(description="The arguments it was called with.")
    confidence: float = Field(description="How sure the recogniser was, 0..1.")
    source: str = Field(description="'template', 'llm', or 'corrected' (a misheard spoken command).")


class AskTool(BaseModel):
    """A tool call the turn made."""

    tool: str = Field(description="The tool.")
    agent: str = Field(description="The agent that served it.")
    ok: bool = Field(description="False when it failed.")
    text: str = Field(description="Its one-line result.")
    structured: dict[str, Any] | None = Field(default=None, description="Its structured result.")


class AskApproval(BaseModel):
    """An approval the turn waited for."""

    approval_id: str = Field(description="The approval's id.")
    tool: str = Field(description="The dangerous tool.")
    status: str = Field(description="approved, rejected or expired.")


class AskResult(BaseModel):
    """The outcome of one Kommandant turn."""

    reply: str = Field(description="The reply a person would see in the chat.")
    intents: list[AskIntent] = Field(default_factory=list, description="Commands recognised, in order.")
    tools: list[AskTool] = Field(default_factory=list, description="Tool calls made, in order.")
    approvals: list[AskApproval] = Field(default_factory=list, description="Approvals waited for.")
    suggestions: list[str] = Field(default_factory=list, description="Commands to try when none matched.")

    def record(self, event: Event) -> None:
        """Fold one turn event into the result."""
        if isinstance(event, IntentRecognized):
            self.intents.append(
                AskIntent(
                    tool=event.tool,
                    arguments=event.arguments,
                    confidence=event.confidence,
                    source=event.source,
                )
            )
        elif isinstance(event, ToolFinished):
            self.tools.append(
                AskTool(
                    tool=event.tool,
                    agent=event.agent,
                    ok=event.ok,
                    text=event.text,
                    structured=event.structured,
                )
            )
        elif isinstance(event, ApprovalResolved):
            self.approvals.append(
                AskApproval(approval_id=event.approval_id, tool=event.tool, status=event.status)
            )
        elif isinstance(event, ReplyDone):
            self.reply, self.suggestions = event.text, list(event.suggestions)


ASK = types.Tool(
    name="ask",
    title="Ask Kommandant",
    description=(
        "Run one Kommandant turn from plain language, as if typed in its chat: it recognises the commands "
        "(several in one sentence run in order), runs them with the usual approvals, and replies."
    ),
    inputSchema=AskInput.model_json_schema(),
    outputSchema=AskResult.model_json_schema(),
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


def _risk_note(risk: Risk) -> str:
    if risk is Risk.DANGEROUS:
        return " (Dangerous: waits for a person's approval before it runs.)"
    return ""
