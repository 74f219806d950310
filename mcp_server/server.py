"""Kommandant as an MCP server: every catalog tool, an ``ask`` tool, resources and prompts.

Tool schemas come from the catalog (not from Python signatures), so the FastMCP tool manager is
bypassed: ``tools/list`` and ``tools/call`` are answered here, and every call goes through
``Kommandant.run_tool`` (or ``Kommandant.handle`` for ``ask``) — the same policy, approvals, audit and bus
dispatch as the web chat. Resources and prompts use FastMCP's own managers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcp import types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.fastmcp import Context, FastMCP
from mcp.shared.exceptions import McpError
from pydantic import BaseModel, Field

from assistant import policy
from assistant.events import ApprovalRequired, Event, ReplyDelta, Role, ToolFinished, Turn
from assistant.result import collect
from mcp_server.auth import Caller
from mcp_server.catalog import ASK, AskInput, mcp_tool
from mcp_server.resources import register_prompts, register_resources
from tools import ToolDefinition
from tools.errors import InvalidArgumentsError

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant
    from assistant.runtime import Runtime

log = logging.getLogger(__name__)

CHANNEL = "mcp"
CATALOG_REFRESH_SECONDS = 2.0
"""How often ``tools/list`` looks for tools of newly attached outside servers."""
INSTRUCTIONS = (
    "Kommandant is a personal assistant with memory, reminders, a knowledge base, bots and schedules. "
    "Call its tools directly, or use `ask` with a plain-language request. Dangerous tools wait for a "
    "person's approval before they run."
)


class ApprovalAnswer(BaseModel):
    """What the person answers to an elicitation for a dangerous call."""

    approve: bool = Field(description="Run it (true) or not (false).")


class KommandantMCP(FastMCP[None]):
    """The MCP server over one ``Runtime``; ``runtime`` returns it at call time (it opens after us)."""

    def __init__(self, runtime: Callable[[], Runtime], *, local: Caller | None) -> None:
        """``local``: who stdio callers act as; None on HTTP, where every request carries a token."""
        super().__init__(name="kommandant", instructions=INSTRUCTIONS, log_level="WARNING")
        self._runtime = runtime
        self._local = local
        self._refreshed = 0.0
        self._mcp_server.list_tools()(self.list_catalog_tools)
        self._mcp_server.call_tool(validate_input=False)(self.call_catalog_tool)
        register_resources(self, self)
        register_prompts(self)

    # -- who and what ---------------------------------------------------------------------------------
    @property
    def kommandant(self) -> Kommandant:
        rt = self._runtime()
        if rt.kommandant is None:
            raise RuntimeError("Kommandant is still starting")
        return rt.kommandant

    def caller(self, ctx: Context[Any, Any, Any] | None = None) -> Caller:
        """The token's user and role on HTTP; the local user on stdio. No token on HTTP is an error."""
        ctx = ctx or self.get_context()
        request = ctx.request_context.request if ctx.request_context is not None else None
        user = getattr(request, "scope", {}).get("user") if request is not None else None
        if isinstance(user, AuthenticatedUser):
            token = user.access_token
            role: Role = token.scopes[0] if token.scopes else "viewer"  # type: ignore[assignment]
            return Caller(user=token.subject or token.client_id, role=role)
        if self._local is None:
            raise PermissionError("This MCP endpoint needs a bearer token.")
        return self._local

    async def refresh_catalog(self, *, force: bool = False) -> None:
        """Pick up tools of outside MCP servers attached since the last look (at most every 2 s)."""
        now = time.monotonic()
        if not force and now - self._refreshed < CATALOG_REFRESH_SECONDS:
            return
        self._refreshed = now
        from agents.mcp_bridge import load_bridged_tools

        await load_bridged_tools(self.kommandant.services)

    # -- tools/list and tools/call --------------------------------------------------------------------
    async def list_catalog_tools(self) -> list[types.Tool]:
        """Every catalog tool (built in and bridged) with its schemas, and ``ask``."""
        await self.refresh_catalog()
        return [ASK, *(mcp_tool(tool) for tool in self.kommandant.services.catalog)]

    async def call_catalog_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Run one call; every failure a person can act on is an ``isError`` result with a sentence."""
        ctx = self.get_context()
        try:
            caller = self.caller(ctx)
        except PermissionError as err:
            return error_result(str(err))
        if name == ASK.name:
            return await self._ask(arguments, ctx, caller)
        catalog = self.kommandant.services.catalog
        if name not in catalog:
            await self.refresh_catalog(force=True)
        if name not in catalog:
            return error_result(f"There is no tool called {name!r}; tools/list shows the tools there are.")
        return await self._run_tool(catalog.get(name), arguments, ctx, caller)

    async def _run_tool(
        self, tool: ToolDefinition, arguments: dict[str, Any], ctx: Context[Any, Any, Any], caller: Caller
    ) -> types.CallToolResult:
        turn = Turn(text=f"[mcp] {tool.name}", user=caller.user, channel=CHANNEL, role=caller.role)
        finished: ToolFinished | None = None
        said: list[str] = []
        async for event in self._with_approvals(self.kommandant.run_tool(tool, arguments, turn), ctx, caller):
            if isinstance(event, ToolFinished):
                finished = event
            elif isinstance(event, ReplyDelta):
                said.append(event.text)
        if finished is None:  # refused, invalid arguments, or not approved: the core said why
            return error_result(" ".join(said) or f"{tool.name} did not run.")
        if not finished.ok:
            return error_result(finished.text)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=finished.text)],
            structuredContent=finished.structured,
        )

    async def _ask(
        self, arguments: dict[str, Any], ctx: Context[Any, Any, Any], caller: Caller
    ) -> types.CallToolResult:
        try:
            request = AskInput.model_validate(arguments)
        except ValueError as err:
            return error_result(str(InvalidArgumentsError(f"Invalid arguments for ask: {err}")))
        turn = Turn(
            text=request.text, user=caller.user, channel=CHANNEL, thread=request.thread, role=caller.role
        )
        result = await collect(self._with_approvals(self.kommandant.handle(turn), ctx, caller))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.reply)],
            structuredContent=result.model_dump(mode="json"),
        )

    # -- approvals ------------------------------------------------------------------------------------
    async def _with_approvals(
        self, events: AsyncIterator[Event], ctx: Context[Any, Any, Any], caller: Caller
    ) -> AsyncIterator[Event]:
        """Pass events through; on ``ApprovalRequired`` ask the person (elicitation) or say whom to ask."""
        async for event in events:
            if isinstance(event, ApprovalRequired):
                await self._seek_approval(event, ctx, caller)
            yield event

    async def _seek_approval(
        self, event: ApprovalRequired, ctx: Context[Any, Any, Any], caller: Caller
    ) -> None:
        """Elicit a decision when the client can ask its user and the caller may approve; otherwise the
        core waits (until the approval expires) for a person to decide in the web chat, Slack or CLI."""
        where = (
            f"{event.tool} needs approval {event.approval_id[:8]}: approve or reject it in the web chat, "
            f"with `{self.kommandant.services.catalog.approval_decider().name}`, "
            f'or `kommandant ask "approve {event.approval_id[:8]}"`.'
        )
        if not (policy.may_approve(caller.role) and _can_elicit(ctx)):
            await _notify(ctx, where)
            return
        remaining = (event.expires_at - datetime.now(UTC)).total_seconds()
        message = f"Run {event.tool} with {json.dumps(event.arguments, ensure_ascii=False)}?"
        try:
            async with asyncio.timeout(max(remaining, 0.1)):
                answer = await ctx.elicit(message, schema=ApprovalAnswer)
        except (TimeoutError, McpError) as err:
            log.info("elicitation for approval %s ended without an answer: %s", event.approval_id, err)
            await _notify(ctx, where)
            return
        approve = answer.action == "accept" and answer.data is not None and answer.data.approve
        decided = await self.kommandant.decide(
            event.approval_id, approve=approve, user=caller.user, role=caller.role, channel=CHANNEL
        )
        log.info("approval %s decided over MCP: %s", event.approval_id, decided.text)


def error_result(message: str) -> types.CallToolResult:
    """An ``isError`` result whose text is one sentence for the person."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], isError=True)


def _can_elicit(ctx: Context[Any, Any, Any]) -> bool:
    capability = types.ClientCapabilities(elicitation=types.ElicitationCapability())
    return ctx.request_context.session.check_client_capability(capability)


async def _notify(ctx: Context[Any, Any, Any], message: str) -> None:
    """A log notification to the client; losing it must not fail the call."""
    try:
        await ctx.info(message)
    except Exception:  # the client may have gone; the call still waits for the decision
        log.debug("could not send a log notification", exc_info=True)


__all__ = ["CHANNEL", "ApprovalAnswer", "Caller", "KommandantMCP", "error_result"]
