"""The MCP client bridge: an outside MCP server attached as a specialist agent on the bus.

``kommandant worker --mcp "<command or url>"`` connects to the server as an MCP client, turns each of its
tools into a catalog definition named ``<server>__<tool>``, publishes those definitions in Postgres (so
every front door can list and call them) and serves them from the agent's bus queue. Calls reach it
through ``Kommandant.run_tool`` like any other tool: the same policy, approvals and audit.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mcp import ClientSession, McpError, StdioServerParameters
from mcp import types as mcp_types

from agents.base import Agent
from agents.services import Services
from agents.worker import AgentWorker
from bus import ToolCall, ToolResult
from storage.bridged import BridgedToolRecord, BridgedToolRepository
from tools import Risk, ToolDefinition
from tools.errors import InvalidArgumentsError
from tools.external import declared_output_schema, external_tool

log = logging.getLogger(__name__)

SEPARATOR = "__"
"""Between the server's name and its tool's name: ``weather__forecast``."""
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


class BridgeError(Exception):
    """The outside server could not be attached; the message says why in one sentence."""


def clean_name(text: str, *, limit: int = 64) -> str:
    """A catalog-safe name: lowercase letters, digits and '_', starting with a letter."""
    name = _NOT_NAME.sub("_", text.strip().lower()).strip("_") or "mcp"
    if not name[0].isalpha():
        name = "x" + name
    return name[:limit]


def is_url(target: str) -> bool:
    """True when the target is a streamable-HTTP endpoint rather than a command to start."""
    return target.startswith(("http://", "https://"))


def tool_risk(settings: Any, name: str, tool: mcp_types.Tool) -> Risk:
    """The risk of a bridged tool: the per-tool setting, else the default, raised to dangerous when the
    server itself marks the tool destructive (an outside server's hints never lower the risk)."""
    explicit = settings.mcp_bridge_tool_risks.get(name)
    if explicit is not None:
        return Risk(explicit)
    risk = Risk(settings.mcp_bridge_risk)
    if tool.annotations is not None and tool.annotations.destructiveHint is True:
        return Risk.DANGEROUS
    return risk


def definition(record: BridgedToolRecord) -> ToolDefinition:
    """The catalog definition of a bridged tool as stored."""
    return external_tool(
        name=record.name,
        description=record.description,
        agent=record.agent,
        input_schema=record.input_schema,
        output_schema=record.output_schema,
        risk=Risk(record.risk),
    )


async def load_bridged_tools(services: Services) -> list[ToolDefinition]:
    """Add (or refresh) the tools of every attached outside server in ``services.catalog``.

    Front doors call this to see bridged tools; a tool whose stored schema is broken is skipped with a
    warning rather than hiding the others.
    """
    loaded = []
    for record in await BridgedToolRepository(services.database.sessionmaker).all():
        if record.name in services.catalog and not _is_bridged(services.catalog.get(record.name)):
            continue  # never let a stored row shadow a built-in tool
        try:
            tool = definition(record)
        except ValueError:
            log.warning("skipping bridged tool %s: its schema is invalid", record.name, exc_info=True)
            continue
        loaded.append(services.catalog.replace(tool))
    return loaded


def _is_bridged(tool: ToolDefinition) -> bool:
    return SEPARATOR in tool.name


@dataclass(frozen=True, slots=True)
class RemoteTool:
    """One outside tool: its name on the outside server and its catalog definition here."""

    remote_name: str
    definition: ToolDefinition


class BridgeAgent(Agent):
    """An agent whose tools are an outside MCP server's; ``BridgeWorker`` forwards the calls."""

    def __init__(self, services: Services, name: str, session: ClientSession, tools: list[RemoteTool]):
        self.name = name
        self.description = f"Tools of the outside MCP server {name!r}."
        super().__init__(services)
        self.session = session
        self.remote = {tool.definition.name: tool for tool in tools}
        for tool in tools:
            self.register(tool.definition, self._forwarded)

    async def _forwarded(self, args: Any, ctx: Any) -> Any:  # pragma: no cover - BridgeWorker forwards
        raise NotImplementedError("bridge calls are forwarded by BridgeWorker.dispatch")


class BridgeWorker(AgentWorker):
    """Serves a ``BridgeAgent``: each call goes to the outside server and its result comes back as is."""

    agent: BridgeAgent

    async def dispatch(self, call: ToolCall) -> ToolResult:
        """Forward one call; the outside server's content, structured content and isError pass through."""
        agent = self.agent
        remote = agent.remote.get(call.tool)
        if remote is None:
            return ToolResult.error(call.call_id, f"The {agent.name} agent has no tool {call.tool!r}.")
        try:
            remote.definition.validate_arguments(call.arguments)
        except InvalidArgumentsError as err:
            return ToolResult.error(call.call_id, str(err), agent=agent.name)
        remaining = max(call.remaining(), 0.001)
        try:
            result = await agent.session.call_tool(
                remote.remote_name, call.arguments, read_timeout_seconds=timedelta(seconds=remaining)
            )
        except McpError as err:
            message = f"The {agent.name} MCP server refused {call.tool}: {err.error.message}"
            return ToolResult.error(call.call_id, message, agent=agent.name)
        except RuntimeError as err:  # the SDK's check of structured content against the output schema
            message = f"The {agent.name} MCP server answered {call.tool} with an invalid result: {err}"
            return ToolResult.error(call.call_id, message, agent=agent.name)
        return ToolResult(call_id=call.call_id, result=result, agent=agent.name)


@asynccontextmanager
async def connect(target: str) -> AsyncIterator[tuple[ClientSession, mcp_types.InitializeResult]]:
    """An initialised MCP client session to a command (stdio) or a URL (streamable HTTP)."""
    async with AsyncExitStack() as stack:
        if is_url(target):
            from mcp.client.streamable_http import streamable_http_client

            read, write, _ = await stack.enter_async_context(streamable_http_client(target))
        else:
            from mcp.client.stdio import stdio_client

            argv = shlex.split(target)
            if not argv:
                raise BridgeError("Give the outside MCP server as a command or an http(s) URL.")
            params = StdioServerParameters(command=argv[0], args=argv[1:])
            read, write = await stack.enter_async_context(stdio_client(params))
        session = await stack.enter_async_context(ClientSession(read, write))
        yield session, await session.initialize()


async def remote_tools(session: ClientSession) -> list[mcp_types.Tool]:
    """Every tool the outside server lists, following its pages."""
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(params=mcp_types.PaginatedRequestParams(cursor=cursor))
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return tools


def bridged_tools(settings: Any, agent: str, tools: list[mcp_types.Tool]) -> list[RemoteTool]:
    """Catalog definitions of an outside server's tools under ``<agent>__<tool>`` names."""
    bridged: dict[str, RemoteTool] = {}
    for tool in tools:
        name = f"{agent}{SEPARATOR}{clean_name(tool.name, limit=62 - len(agent))}"
        if name in bridged:
            raise BridgeError(f"Two tools of {agent} map to the same name {name}; rename one of them.")
        try:
            defined = external_tool(
                name=name,
                description=(tool.description or tool.title or tool.name).strip(),
                agent=agent,
                input_schema=tool.inputSchema,
                output_schema=tool.outputSchema,
                risk=tool_risk(settings, name, tool),
            )
        except ValueError as err:
            raise BridgeError(f"The {agent} MCP server lists a tool Kommandant cannot use: {err}") from err
        bridged[name] = RemoteTool(remote_name=tool.name, definition=defined)
    return list(bridged.values())


@asynccontextmanager
async def attach(services: Services, target: str, *, name: str | None = None) -> AsyncIterator[BridgeWorker]:
    """Connect to an outside MCP server and serve its tools from the bus until the block ends."""
    from agents import BUILTIN_AGENTS

    async with connect(target) as (session, hello):
        if hello.capabilities.tools is None:
            raise BridgeError(f"The MCP server {target!r} offers no tools.")
        agent = clean_name(name or hello.serverInfo.name, limit=40)
        if agent in BUILTIN_AGENTS:
            raise BridgeError(f"{agent!r} is a built-in agent's name; name the bridge with --mcp-name.")
        tools = bridged_tools(services.settings, agent, await remote_tools(session))
        for tool in tools:
            services.catalog.replace(tool.definition)
        await BridgedToolRepository(services.database.sessionmaker).publish(
            agent, [_row(tool) for tool in tools]
        )
        worker = BridgeWorker(BridgeAgent(services, agent, session, tools))
        async with worker:
            log.info("attached MCP server %s as agent %s with %d tools", target, agent, len(tools))
            yield worker


def _row(tool: RemoteTool) -> dict[str, Any]:
    defined = tool.definition
    return {
        "name": defined.name,
        "agent": defined.agent,
        "remote_name": tool.remote_name,
        "description": defined.description,
        "input_schema": defined.input_schema(),
        "output_schema": declared_output_schema(defined),
        "risk": str(defined.risk),
    }
