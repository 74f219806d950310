"""Wire messages of the bus: JSON envelopes around MCP ``tools/call`` params and ``CallToolResult`` bodies."""

from __future__ import annotations

import time
from typing import Any, Literal, Self
from uuid import uuid4

from mcp import types as mcp_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bus.errors import MessageTooLarge, PoisonMessage

DEFAULT_MAX_MESSAGE_BYTES = 1_048_576

CallerRole = Literal["admin", "operator", "viewer"]
"""The asking person's role, as the front door established it (the turn's role)."""


def _new_id() -> str:
    return uuid4().hex


class ToolCall(BaseModel):
    """One tool call on its way to the agent that owns the tool."""

    model_config = ConfigDict(extra="ignore")

    call_id: str = Field(default_factory=_new_id, description="Unique id of this call (uuid4 hex).")
    idempotency_key: str = Field(
        default="", description="Calls with the same key act once; defaults to the call id."
    )
    params: mcp_types.CallToolRequestParams = Field(description="The MCP tools/call params: name, arguments.")
    user: str = Field(default="local", description="Who asked.")
    channel: str = Field(default="cli", description="Front door the request came through.")
    thread: str | None = Field(default=None, description="Conversation thread, if any.")
    role: CallerRole = Field(
        default="viewer",
        description="The asking person's role, for what a handler shows (an admin reads every user's audit "
        "rows); a call that names none is a viewer's.",
    )
    deadline: float = Field(description="Unix epoch seconds; a call past its deadline is not executed.")
    attempt: int = Field(default=1, ge=1, description="1 for the first delivery, +1 for every retry.")
    side_effects: bool = Field(
        default=True,
        description="False for calls that only read: running one twice is harmless, so its result is not "
        "stored for idempotency (saves two database round trips per call).",
    )

    repeatable: bool = Field(
        default=False,
        description="True when running the call again with the same idempotency key acts once (its effect is "
        "keyed by the key): a worker that takes over the call after its first worker died mid-call runs it "
        "again; otherwise it answers that the call may or may not have happened.",
    )

    @model_validator(mode="after")
    def _key_defaults_to_call_id(self) -> Self:
        if not self.idempotency_key:
            self.idempotency_key = self.call_id
        return self

    @classmethod
    def create(
        cls,
        tool: str,
        arguments: dict[str, Any] | None,
        *,
        timeout: float,
        user: str = "local",
        channel: str = "cli",
        thread: str | None = None,
        role: CallerRole = "viewer",
        idempotency_key: str | None = None,
        side_effects: bool = True,
        repeatable: bool = False,
    ) -> ToolCall:
        """A new call of ``tool`` that must finish within ``timeout`` seconds from now."""
        call_id = _new_id()
        return cls(
            call_id=call_id,
            idempotency_key=idempotency_key or call_id,
            params=mcp_types.CallToolRequestParams(name=tool, arguments=arguments or {}),
            user=user,
            channel=channel,
            thread=thread,
            role=role,
            deadline=time.time() + timeout,
            side_effects=side_effects,
            repeatable=repeatable,
        )

    @property
    def tool(self) -> str:
        """Name of the tool to run."""
        return self.params.name

    @property
    def arguments(self) -> dict[str, Any]:
        """Arguments of the tool (an empty dict when none were given)."""
        return self.params.arguments or {}

    def remaining(self, now: float | None = None) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self.deadline - (time.time() if now is None else now)


class ToolResult(BaseModel):
    """The answer to one ToolCall: an MCP ``CallToolResult``."""

    model_config = ConfigDict(extra="ignore")

    call_id: str = Field(description="The call this answers.")
    result: mcp_types.CallToolResult = Field(description="Content, structured content and isError.")
    agent: str | None = Field(default=None, description="The agent that served the call.")
    replayed: bool = Field(
        default=False, description="True when this is the stored result of an earlier call with the same key."
    )

    @classmethod
    def ok(
        cls, call_id: str, *, text: str, structured: dict[str, Any] | None = None, agent: str | None = None
    ) -> ToolResult:
        """A successful result with one text block and optional structured content."""
        return cls(
            call_id=call_id,
            agent=agent,
            result=mcp_types.CallToolResult(
                content=[mcp_types.TextContent(type="text", text=text)], structuredContent=structured
            ),
        )

    @classmethod
    def error(cls, call_id: str, message: str, *, agent: str | None = None) -> ToolResult:
        """A failed result whose text is a sentence a person can read."""
        return cls(
            call_id=call_id,
            agent=agent,
            result=mcp_types.CallToolResult(
                content=[mcp_types.TextContent(type="text", text=message)], isError=True
            ),
        )

    @property
    def is_error(self) -> bool:
        """True when the tool failed."""
        return self.result.isError

    @property
    def text(self) -> str:
        """The text blocks of the result joined by newlines."""
        return "\n".join(c.text for c in self.result.content if isinstance(c, mcp_types.TextContent))


class Event(BaseModel):
    """A fan-out notification: heartbeats, tool lifecycle, approvals."""

    topic: str = Field(description="Dot-separated words, matched by '*' (one word) and '#' (any words).")
    payload: dict[str, Any] = Field(default_factory=dict, description="JSON payload.")
    ts: float = Field(default_factory=time.time, description="Unix epoch seconds when it was published.")


class DeadLetter(BaseModel):
    """A message in the dead-letter queue, as ``kommandant bus dlq list`` shows it."""

    id: str = Field(description="Message id (the call id when the body was a call); used to replay or purge.")
    agent: str | None = Field(default=None, description="Agent whose queue the message came from.")
    reason: str = Field(description="Why it was dead-lettered.")
    attempts: int = Field(default=1, description="Deliveries tried before it was dead-lettered.")
    dead_lettered_at: float | None = Field(default=None, description="Unix epoch seconds.")
    call: ToolCall | None = Field(default=None, description="The call, or None when the body was not a call.")
    body_preview: str | None = Field(default=None, description="Start of the body when it was not a call.")


def encode(message: BaseModel, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """JSON bytes of ``message``; ``MessageTooLarge`` when they exceed ``max_bytes``."""
    body = message.model_dump_json(by_alias=True, exclude_none=True).encode()
    if len(body) > max_bytes:
        kind = type(message).__name__
        what = f" for {message.tool}" if isinstance(message, ToolCall) else ""
        raise MessageTooLarge(
            f"The {kind}{what} is {len(body):,} bytes, more than the bus limit of {max_bytes:,} bytes."
        )
    return body


def encode_result(result: ToolResult, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """JSON bytes of ``result``; an error result saying so when it is too large to send."""
    try:
        return encode(result, max_bytes=max_bytes)
    except MessageTooLarge as err:
        return encode(
            ToolResult.error(result.call_id, f"The result could not be sent: {err}", agent=result.agent)
        )


def decode_call(body: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> ToolCall:
    """Parse a call; ``PoisonMessage`` when it is too large or not a valid call."""
    if len(body) > max_bytes:
        raise PoisonMessage(f"message of {len(body):,} bytes exceeds the limit of {max_bytes:,} bytes")
    try:
        return ToolCall.model_validate_json(body)
    except ValidationError as err:
        raise PoisonMessage(f"not a valid tool call: {_first_problem(err)}") from err


def decode_result(body: bytes) -> ToolResult:
    """Parse a result; ``PoisonMessage`` when it is not one."""
    try:
        return ToolResult.model_validate_json(body)
    except ValidationError as err:
        raise PoisonMessage(f"not a valid tool result: {_first_problem(err)}") from err


def preview(body: bytes, limit: int = 200) -> str:
    """The start of a body as text, for logs and the dead-letter listing."""
    text = body[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > limit else "")


def _first_problem(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"
