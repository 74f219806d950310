"""One turn's events folded into one result: what MCP ``ask``, ``kommandant ask --json`` and tests return.

Front doors that show a turn live (the web chat, the terminal) render events as they come; those that
answer once fold them here, so the shape of "what a turn did" is defined in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field

from assistant.events import (
    ApprovalResolved,
    Event,
    Failed,
    Heard,
    IntentRecognized,
    ReplyDone,
    ToolFinished,
)

__all__ = ["TurnApproval", "TurnIntent", "TurnResult", "TurnTool", "collect"]


class TurnIntent(BaseModel):
    """A command recognised in the request."""

    tool: str = Field(description="The tool it maps to.")
    arguments: dict[str, Any] = Field(description="The arguments it was called with.")
    confidence: float = Field(description="How sure the recogniser was, 0..1.")
    source: str = Field(description="'template', 'llm', or 'corrected' (a misheard spoken command).")


class TurnTool(BaseModel):
    """A tool call the turn made."""

    tool: str = Field(description="The tool.")
    agent: str = Field(description="The agent that served it.")
    ok: bool = Field(description="False when it failed.")
    text: str = Field(description="Its one-line result.")
    structured: dict[str, Any] | None = Field(default=None, description="Its structured result.")
    duration_ms: float = Field(default=0.0, description="How long the call took, in milliseconds.")


class TurnApproval(BaseModel):
    """An approval the turn waited for."""

    approval_id: str = Field(description="The approval's id.")
    tool: str = Field(description="The dangerous tool.")
    status: str = Field(description="approved, rejected or expired.")


class TurnResult(BaseModel):
    """The outcome of one Kommandant turn."""

    reply: str = Field(default="", description="The reply a person would see in the chat.")
    intents: list[TurnIntent] = Field(default_factory=list, description="Commands recognised, in order.")
    tools: list[TurnTool] = Field(default_factory=list, description="Tool calls made, in order.")
    approvals: list[TurnApproval] = Field(default_factory=list, description="Approvals waited for.")
    suggestions: list[str] = Field(default_factory=list, description="Commands to try when none matched.")
    failures: list[str] = Field(
        default_factory=list, description="Sentences saying what went wrong, if anything did."
    )
    heard: str | None = Field(
        default=None, description="Spoken turns: the transcript as the turn read it; None for typed text."
    )
    transcript: dict[str, Any] | None = Field(
        default=None, description="Spoken turns: the recogniser's transcript (engine, words, confidence)."
    )

    def record(self, event: Event | Heard) -> None:
        """Fold one event into the result."""
        if isinstance(event, Heard):
            self.heard, self.transcript = event.text, event.transcript.to_json()
        elif isinstance(event, IntentRecognized):
            self.intents.append(
                TurnIntent(
                    tool=event.tool,
                    arguments=event.arguments,
                    confidence=event.confidence,
                    source=event.source,
                )
            )
        elif isinstance(event, ToolFinished):
            self.tools.append(
                TurnTool(
                    tool=event.tool,
                    agent=event.agent,
                    ok=event.ok,
                    text=event.text,
                    structured=event.structured,
                    duration_ms=round(event.duration_ms, 2),
                )
            )
        elif isinstance(event, ApprovalResolved):
            self.approvals.append(
                TurnApproval(approval_id=event.approval_id, tool=event.tool, status=event.status)
            )
        elif isinstance(event, Failed):
            self.failures.append(event.message)
        elif isinstance(event, ReplyDone):
            self.reply, self.suggestions = event.text, list(event.suggestions)


async def collect(
    events: AsyncIterator[Event | Heard],
    on_event: Callable[[Event | Heard], Awaitable[None]] | None = None,
) -> TurnResult:
    """Fold a turn's event stream into a ``TurnResult``; ``on_event`` sees each event first (to show it,
    or to ask for an approval while the turn waits)."""
    result = TurnResult()
    async for event in events:
        if on_event is not None:
            await on_event(event)
        result.record(event)
    return result
