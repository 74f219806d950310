"""The MCP client bridge over RabbitMQ: a small outside MCP server attached as an agent; its tools join the
catalog (namespaced) and are called through the Kommandant's MCP server with the same policy and audit."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest_asyncio
from mcp import ClientSession, types
from mcp.shared.context import RequestContext
from mcp.shared.memory import create_connected_server_and_client_session
from pydantic import SecretStr

from agents import BUILTIN_AGENTS
from agents.mcp_bridge import attach, load_bridged_tools
from assistant.runtime import Runtime
from bus.rabbit import Topology, delete_topology
from mcp_server import Caller, KommandantMCP
from settings import Settings
from storage import Database
from storage.audit import AuditLog
from tests.mcp.conftest import Held

OUTSIDE = f"{sys.executable} {Path(__file__).with_name('outside_server.py')}"


async def elicit_yes(
    context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"approve": True})


@pytest_asyncio.fixture(loop_scope="session")
async def bridged(db: Database, settings: Settings, amqp_url: str) -> AsyncIterator[tuple[Runtime, str]]:
    """A Kommandant on RabbitMQ with the built-in agents, and a bridge worker (its own runtime, as
    `kommandant worker --mcp` runs it) serving the outside server; yields the Kommandant and agent name."""
    configured = settings.model_copy(
        update={
            "amqp_url": SecretStr(amqp_url),
            "bus_prefix": f"ktest{uuid.uuid4().hex[:8]}",
            "heartbeat_interval": 0.5,
            "call_timeout": 15.0,
            "mcp_bridge_tool_risks": {"outside_tools__shout_text": "read"},
        }
    )

    @asynccontextmanager
    async def worker_process() -> AsyncIterator[str]:
        async with Runtime(configured, agents=[], database=db) as worker:
            assert worker.services is not None
            async with attach(worker.services, OUTSIDE) as bridge:
                yield bridge.agent.name

    try:
        async with Runtime(configured, agents=list(BUILTIN_AGENTS), database=db) as front:
            held = Held(worker_process)
            try:
                yield front, await held.value()
            finally:
                await held.close()
    finally:
        assert configured.amqp_url is not None
        await delete_topology(
            configured.amqp_url.get_secret_value(),
            Topology(configured.bus_prefix),
            [*BUILTIN_AGENTS, "outside_tools"],
        )


async def test_outside_tools_join_the_catalog_and_run_over_the_bus(
    bridged: tuple[Runtime, str], db: Database
) -> None:
    front, agent = bridged
    assert agent == "outside_tools"
    assert front.services is not None
    loaded = {tool.name: tool for tool in await load_bridged_tools(front.services)}
    assert set(loaded) == {f"{agent}__add", f"{agent}__shout_text", f"{agent}__wipe", f"{agent}__broken"}
    assert str(loaded[f"{agent}__add"].risk) == "write"  # the default for outside tools
    assert str(loaded[f"{agent}__shout_text"].risk) == "read"  # set per tool in the settings
    assert str(loaded[f"{agent}__wipe"].risk) == "dangerous"  # the server marks it destructive

    server = KommandantMCP(lambda: front, local=Caller(user="dev", role="admin"))
    async with create_connected_server_and_client_session(server, elicitation_callback=elicit_yes) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert listed[f"{agent}__add"].inputSchema["required"] == ["a", "b"]
        assert listed[f"{agent}__add"].outputSchema is not None

        added = await client.call_tool(f"{agent}__add", {"a": 2, "b": 3})
        assert not added.isError, added.content
        assert added.structuredContent == {"result": 5}

        shouted = await client.call_tool(f"{agent}__shout_text", {"text": "hi"})
        assert shouted.structuredContent == {"result": "HI!"}

        invalid = await client.call_tool(f"{agent}__add", {"a": "two"})
        assert invalid.isError
        assert f"Invalid arguments for {agent}__add" in invalid.content[0].text  # type: ignore[union-attr]

        failed = await client.call_tool(f"{agent}__broken", {})
        assert failed.isError and "the disk is on fire" in failed.content[0].text  # type: ignore[union-attr]

        wiped = await client.call_tool(f"{agent}__wipe", {"path": "/tmp/x"})
        assert not wiped.isError and wiped.structuredContent == {"result": "wiped /tmp/x"}

    rows = await AuditLog(db.sessionmaker).tail(100)
    calls = [r for r in rows if r.kind == "tool_call" and r.tool == f"{agent}__add"]
    assert calls and calls[0].data["agent"] == agent and calls[0].channel == "mcp"
    assert any(r.kind == "approval_requested" and r.tool == f"{agent}__wipe" for r in rows)
    results = [r for r in rows if r.kind == "tool_result" and r.tool == f"{agent}__add"]
    assert results[0].data["agent"] == agent


async def test_bridge_agent_shows_in_status_and_viewer_policy_applies(bridged: tuple[Runtime, str]) -> None:
    front, agent = bridged
    server = KommandantMCP(lambda: front, local=Caller(user="viv", role="viewer"))
    async with create_connected_server_and_client_session(server) as client:
        status = await client.call_tool("system_status", {})
        assert status.structuredContent is not None
        found = {a["name"]: a for a in status.structuredContent["agents"]}
        assert found[agent]["alive"] and f"{agent}__add" in found[agent]["tools"]
        refused = await client.call_tool(f"{agent}__add", {"a": 1, "b": 1})
        assert refused.isError
        assert "As a viewer you may not run" in refused.content[0].text  # type: ignore[union-attr]
        read = await client.call_tool(f"{agent}__shout_text", {"text": "ok"})
        assert read.structuredContent == {"result": "OK!"}
