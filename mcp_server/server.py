"""Kommandant as an MCP server: every catalog tool, an ``ask`` tool, resources and prompts.

Tool schemas come from the catalog (not from Python signatures), so the FastMCP tool manager is
bypassed: ``tools/list`` and ``tools/call`` are answered here, and every call goes through
``Kommandant.run_tool`` (or ``Kommandant.handle`` for ``ask``) — the same policy, approvals, audit and bus
dispatch as the web chat. Resources and prompts use FastMCP's own managers. The protocol's utilities are
wired here too: ``logging/setLevel`` and the log and progress notifications of a call (``notices``),
``completion/complete`` (``completions``), resource subscriptions, ``tools/list_changed`` and
``resources/list_changed`` (``subscriptions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from mcp import types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import McpError
from pydantic import AnyUrl, BaseModel, Field

from assistant import policy
from assistant.events import ApprovalRequired, ApprovalResolved, Event, ReplyDelta, Role, ToolFinished, Turn
from assistant.result import collect
from bus import Subscription as BusEvents
from mcp_server.auth import Caller
from mcp_server.catalog import ASK, AskInput, instructions, mcp_tool
from mcp_server.completions import Completions
from mcp_server.notices import ClientLog, event_notice
from mcp_server.prompts import register_prompts
from mcp_server.resources import AGENTS_URI, APPROVALS_URI, KNOWLEDGE_URI, register_resources
from mcp_server.subscriptions import Subscriptions
from storage.knowledge import KnowledgeRepository
from storage.registry import AgentRegistry
from tools import ToolDefinition
from tools.errors import InvalidArgumentsError

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant
    from assistant.runtime import Runtime

log = logging.getLogger(__name__)

CHANNEL = "mcp"
CATALOG_REFRESH_SECONDS = 2.0
"""How often ``tools/list`` (and the watch while clients are connected) looks for tools of newly attached
outside servers."""
AGENT_EVENTS = "agent.#"
"""The workers' bus events: ``agent.heartbeat.<agent>`` (the first of a replica: it started) and
``agent.stopped.<agent>``."""
VERSION = version("kommandant")
"""``serverInfo.version``: Kommandant's own, not the MCP SDK's."""


class ApprovalAnswer(BaseModel):
    """What the person answers to an elicitation for a dangerous call."""

    approve: bool = Field(description="Run it (true) or not (false).")


class KommandantMCP(FastMCP[None]):
    """The MCP server over one ``Runtime``; ``runtime`` returns it at call time (it opens after us)."""

    def __init__(self, runtime: Callable[[], Runtime], *, local: Caller | None) -> None:
        """``local``: who stdio callers act as; None on HTTP, where every request carries a token."""
        super().__init__(name="kommandant", instructions=instructions(()), log_level="WARNING")
        self._runtime = runtime
        self._local = local
        self._refreshed = 0.0
        self._announced: frozenset[str] | None = None  # the tool names clients last heard of
        self._documents: tuple[int, int] | None = None  # (documents, chunks) clients last heard of
        self.following_agents = asyncio.Event()
        """Set while the agents' bus events are followed (a replica starting now will be told)."""
        self.client_log = ClientLog()
        self.subscriptions = Subscriptions({APPROVALS_URI, AGENTS_URI, KNOWLEDGE_URI})
        lowlevel = self._mcp_server
        lowlevel.version = VERSION
        lowlevel.list_tools()(self.list_catalog_tools)
        lowlevel.list_resources()(self.list_watched_resources)
        lowlevel.call_tool(validate_input=False)(self.call_catalog_tool)
        lowlevel.set_logging_level()(self.set_logging_level)
        lowlevel.completion()(self.complete)
        lowlevel.subscribe_resource()(self.subscribe)
        lowlevel.unsubscribe_resource()(self.unsubscribe)
        lowlevel.create_initialization_options = self.initialization_options  # type: ignore[method-assign]
        self.completions = Completions()
        register_resources(self, self, self.completions)
        register_prompts(self, self.completions)

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

    def initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        """What ``initialize`` answers, made when each session starts: the instructions name the tools
        there are now (bridged servers come and go)."""
        try:
            catalog: Iterable[ToolDefinition] = self.kommandant.services.catalog
        except RuntimeError:  # still starting: the instructions without the list of agents
            catalog = ()
        self._mcp_server.instructions = instructions(catalog)
        options = type(self._mcp_server).create_initialization_options(
            self._mcp_server,
            notification_options or NotificationOptions(tools_changed=True, resources_changed=True),
            experimental_capabilities,
        )  # fmt: skip
        if options.capabilities.resources is not None:  # the SDK never declares subscriptions itself
            options.capabilities.resources.subscribe = True
        return options

    async def refresh_catalog(self, *, force: bool = False) -> None:
        """Pick up tools of outside MCP servers attached since the last look (at most every 2 s)."""
        now = time.monotonic()
        if not force and now - self._refreshed < CATALOG_REFRESH_SECONDS:
            return
        self._refreshed = now
        from agents.mcp_bridge import load_bridged_tools

        await load_bridged_tools(self.kommandant.services)
        names = frozenset(tool.name for tool in self.kommandant.services.catalog)
        if self._announced is not None and names != self._announced:
            await self.subscriptions.tools_changed()
        self._announced = names

    async def count_documents(self) -> None:
        """Tell the sessions that listed the resources (``resources/list_changed``) and those watching
        ``kommandant://knowledge`` when documents were added or removed since the last count. The
        knowledge agent publishes no event on ingest, so the count in Postgres is what changes."""
        counted = await KnowledgeRepository(self.kommandant.services.database.sessionmaker).count()
        if self._documents is not None and counted != self._documents:
            await self.subscriptions.resources_changed()
            await self.subscriptions.updated(KNOWLEDGE_URI, lambda caller: True)  # everyone's to read
        self._documents = counted

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """While the block runs, every 2 s look for newly attached outside servers (while some client
        has listed the tools) and count the documents (while some client listed the resources or watches
        the knowledge), and follow the agents' bus events, so clients hear of changes without asking."""

        async def watch() -> None:
            while True:
                await asyncio.sleep(CATALOG_REFRESH_SECONDS)
                try:
                    if self.subscriptions.listing:
                        await self.refresh_catalog(force=True)
                    if self.subscriptions.listing_resources or self.subscriptions.watched(KNOWLEDGE_URI):
                        await self.count_documents()
                except Exception:  # the database may be restarting: look again next time
                    log.warning("could not look for attached MCP servers or new documents", exc_info=True)

        tasks = [asyncio.create_task(watch()), asyncio.create_task(self._follow_agents())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _follow_agents(self) -> None:
        """Tell the sessions watching ``kommandant://agents`` when a replica starts (its first heartbeat
        on the bus) or stops; follow again after a broker or database blip."""
        while True:
            try:
                await self._agent_changes()
            except RuntimeError as err:  # still starting (HTTP opens the runtime after us): look again soon
                log.debug("not following the agents yet: %s", err)
            except Exception:
                log.warning("could not follow the agents' events", exc_info=True)
            await asyncio.sleep(CATALOG_REFRESH_SECONDS)

    async def _agent_changes(self) -> None:
        services = self.kommandant.services
        async with services.bus.subscribe(AGENT_EVENTS) as events:
            # the replicas running now are no news: their next heartbeats change nothing
            agents = await AgentRegistry(services.database.sessionmaker).agents()
            running = {i.instance_id for a in agents for i in a.instances if i.status == "running"}
            self.following_agents.set()
            try:
                await self._tell_agent_changes(events, running)
            finally:
                self.following_agents.clear()

    async def _tell_agent_changes(self, events: BusEvents, running: set[str]) -> None:
        async for event in events:
            instance = str(event.payload.get("instance", ""))
            if event.topic.startswith("agent.stopped."):
                running.discard(instance)
            elif instance in running:
                continue
            else:
                running.add(instance)
            await self.subscriptions.updated(AGENTS_URI, lambda caller: True)  # everyone's to read

    # -- tools/list and tools/call --------------------------------------------------------------------
    async def list_catalog_tools(self) -> list[types.Tool]:
        """Every catalog tool (built in and bridged) with its schemas, and ``ask``."""
        self.subscriptions.lists_tools(self._mcp_server.request_context.session)
        await self.refresh_catalog()
        return [ASK, *(mcp_tool(tool) for tool in self.kommandant.services.catalog)]

    async def list_watched_resources(self) -> list[types.Resource]:
        """``resources/list``; from now on the session hears ``resources/list_changed`` when documents
        are added to the knowledge base (counted now, so one added before the next look counts)."""
        self.subscriptions.lists_resources(self._mcp_server.request_context.session)
        if self._documents is None:
            await self.count_documents()
        return await self.list_resources()

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
        async for event in self._observed(self.kommandant.run_tool(tool, arguments, turn), ctx, caller):
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
        result = await collect(self._observed(self.kommandant.handle(turn), ctx, caller))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.reply)],
            structuredContent=result.model_dump(mode="json"),
        )

    # -- logging and completion -----------------------------------------------------------------------
    async def set_logging_level(self, level: types.LoggingLevel) -> None:
        """``logging/setLevel``: the calling session hears ``level`` and more severe from now on."""
        self.client_log.set_level(self._mcp_server.request_context.session, level)

    async def complete(
        self,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.Completion:
        """``completion/complete``: live names for a prompt's or resource template's argument, as the
        caller may see them."""
        return await self.completions.complete(self, ref, argument)

    # -- resource subscriptions -----------------------------------------------------------------------
    async def subscribe(self, uri: AnyUrl) -> None:
        """``resources/subscribe``: the session hears ``resources/updated`` when ``uri`` changes in a way
        its caller may see."""
        session = self._mcp_server.request_context.session
        try:
            self.subscriptions.subscribe(session, str(uri), self.caller())
        except (ValueError, PermissionError) as err:
            raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=str(err))) from err

    async def unsubscribe(self, uri: AnyUrl) -> None:
        """``resources/unsubscribe``."""
        self.subscriptions.unsubscribe(self._mcp_server.request_context.session, str(uri))

    async def _approvals_changed(self, requested_by: str) -> None:
        """Tell the sessions watching the approvals that may see this one: its requester, approvers."""
        await self.subscriptions.updated(
            APPROVALS_URI, lambda caller: policy.may_approve(caller.role) or caller.user == requested_by
        )

    # -- what the client hears while a call runs, and approvals --------------------------------------
    async def _observed(
        self, events: AsyncIterator[Event], ctx: Context[Any, Any, Any], caller: Caller
    ) -> AsyncIterator[Event]:
        """Pass the events of the caller's turn through, telling the client of each step (log and
        progress notifications); on ``ApprovalRequired`` ask the person (elicitation) or say whom to ask."""
        step = 0
        async for event in events:
            if isinstance(event, ApprovalRequired):
                step += 1
                await self._approvals_changed(event.requested_by)
                await self._seek_approval(event, ctx, caller, step)
            elif notice := event_notice(event):
                step += 1
                await self.client_log.tell(ctx, *notice, step)
                if isinstance(event, ApprovalResolved):
                    await self._approvals_changed(caller.user)
            yield event

    async def _seek_approval(
        self, event: ApprovalRequired, ctx: Context[Any, Any, Any], caller: Caller, step: int
    ) -> None:
        """Elicit a decision when the client can ask its user and the caller may approve; otherwise the
        core waits (until the approval expires) for a person to decide in the web chat, Slack or CLI."""
        where = (
            f"{event.tool} needs approval {event.approval_id[:8]}: approve or reject it in the web chat, "
            f"with `{self.kommandant.services.catalog.approval_decider().name}`, "
            f'or `kommandant ask "approve {event.approval_id[:8]}"`.'
        )
        if not (policy.may_approve(caller.role) and _can_elicit(ctx)):
            await self.client_log.tell(ctx, "notice", where, step)
            return
        remaining = (event.expires_at - datetime.now(UTC)).total_seconds()
        message = f"Run {event.tool} with {json.dumps(event.arguments, ensure_ascii=False)}?"
        try:
            async with asyncio.timeout(max(remaining, 0.1)):
                answer = await ctx.elicit(message, schema=ApprovalAnswer)
        except (TimeoutError, McpError) as err:
            log.info("elicitation for approval %s ended without an answer: %s", event.approval_id, err)
            await self.client_log.tell(ctx, "notice", where, step)
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


__all__ = ["CHANNEL", "ApprovalAnswer", "Caller", "KommandantMCP", "error_result"]
