"""Change notifications: a client subscribed to ``kommandant://approvals`` hears when a dangerous call of
a person it may see waits and when it is decided (and no one else's); a client that listed the tools
hears ``tools/list_changed`` when an outside MCP server is attached, one that listed the resources hears
``resources/list_changed`` when a document is added, and one subscribed to ``kommandant://agents`` hears
when an agent's replica starts or stops."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from mcp import ClientSession, types
from mcp.shared.exceptions import McpError
from mcp.shared.memory import create_connected_server_and_client_session
from mcp.shared.session import RequestResponder

from agents import BUILTIN_AGENTS, AgentWorker
from agents.mcp_bridge import attach
from assistant.runtime import Runtime
from mcp_server import Caller, KommandantMCP
from settings import Settings
from storage import Database
from storage.approvals import ApprovalRepository
from tests.mcp.conftest import SessionHost, http_opener, make_token, wait_for

OUTSIDE = f"{sys.executable} {Path(__file__).with_name('outside_server.py')}"
APPROVALS = "kommandant://approvals"
AGENTS = "kommandant://agents"
KNOWLEDGE = "kommandant://knowledge"


class Heard:
    """The server notifications one client session received."""

    def __init__(self) -> None:
        self.notifications: list[types.ServerNotification] = []

    async def __call__(
        self,
        message: RequestResponder[types.ServerRequest, types.ClientResult]
        | types.ServerNotification
        | Exception,
    ) -> None:
        if isinstance(message, types.ServerNotification):
            self.notifications.append(message)

    def updated(self, uri: str) -> int:
        return sum(
            1
            for n in self.notifications
            if isinstance(n.root, types.ResourceUpdatedNotification) and str(n.root.params.uri) == uri
        )

    def tools_changed(self) -> int:
        return sum(1 for n in self.notifications if isinstance(n.root, types.ToolListChangedNotification))

    def resources_changed(self) -> int:
        return sum(1 for n in self.notifications if isinstance(n.root, types.ResourceListChangedNotification))


async def waiting_call(client: ClientSession, heard: Heard) -> tuple[asyncio.Task[types.CallToolResult], str]:
    """Start a dangerous call (``memory_forget``) and wait until ``heard`` is told an approval waits;
    the call and its query."""
    query = f"my kite {uuid.uuid4().hex[:6]}"
    await client.call_tool("memory_remember", {"fact": f"{query} is red"})
    call = asyncio.create_task(client.call_tool("memory_forget", {"query": query}))

    async def told() -> bool:
        return heard.updated(APPROVALS) >= 1

    await wait_for(told)
    return call, query


async def reject(runtime: Runtime, query: str) -> None:
    """Reject the approval waiting for ``memory_forget`` of ``query``, as an admin in the web chat."""
    assert runtime.kommandant is not None and runtime.services is not None
    approvals = ApprovalRepository(runtime.services.database.sessionmaker)
    pending = [a for a in await approvals.pending() if a.arguments == {"query": query}]
    await runtime.kommandant.decide(
        str(pending[0].id), approve=False, user="boss", role="admin", channel="web"
    )


@pytest_asyncio.fixture(loop_scope="session")
async def runtime(settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    async with Runtime(
        settings.model_copy(update={"llm_model": "", "approval_ttl": 60.0, "heartbeat_interval": 0.3}),
        database=db,
    ) as rt:
        yield rt


async def test_approvals_subscribers_hear_of_waiting_and_decided_calls(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    server = KommandantMCP(lambda: runtime, local=Caller(user="ann", role="operator"))
    other = KommandantMCP(lambda: runtime, local=Caller(user="bob", role="operator"))
    ann, bob = Heard(), Heard()
    async with (
        create_connected_server_and_client_session(server, message_handler=ann) as client,
        create_connected_server_and_client_session(other, message_handler=bob) as bystander,
    ):
        with pytest.raises(McpError, match="cannot be subscribed to"):
            await client.subscribe_resource("kommandant://nothing")  # type: ignore[arg-type]
        await client.subscribe_resource(APPROVALS)  # type: ignore[arg-type]
        await bystander.subscribe_resource(APPROVALS)  # type: ignore[arg-type]
        call, query = await waiting_call(client, ann)
        listed = await client.read_resource(APPROVALS)  # type: ignore[arg-type]
        assert "memory_forget" in listed.contents[0].text  # type: ignore[union-attr]
        await reject(runtime, query)
        result = await asyncio.wait_for(call, 15)
        assert result.isError
        assert ann.updated(APPROVALS) >= 2, "the decision is a change too"
        assert bob.updated(APPROVALS) == 0, "bob may not see ann's approval"


async def test_a_client_hears_when_an_outside_server_is_attached(runtime: Runtime) -> None:
    assert runtime.services is not None
    server = KommandantMCP(lambda: runtime, local=Caller(user="dev", role="admin"))
    heard = Heard()
    async with (
        create_connected_server_and_client_session(server, message_handler=heard) as client,
        server.watching(),
    ):
        before = {t.name for t in (await client.list_tools()).tools}
        assert not any(name.startswith("outside_tools__") for name in before)
        async with attach(runtime.services, OUTSIDE):

            async def told() -> bool:
                return heard.tools_changed() >= 1

            await wait_for(told, timeout=20)
            after = {t.name for t in (await client.list_tools()).tools}
        assert "outside_tools__add" in after


async def test_an_ide_over_http_hears_of_its_waiting_call(
    http_server: str, database: Database, person: Runtime
) -> None:
    """The same over streamable HTTP, where the notification travels on the session's GET stream."""
    assert person.kommandant is not None and person.services is not None
    token = await make_token(database, f"sub-{uuid.uuid4().hex[:6]}", "operator", "hugo")
    heard = Heard()
    host = SessionHost(http_opener(http_server, token, on_message=heard), None)
    try:
        client = await host.value()
        await client.subscribe_resource(APPROVALS)  # type: ignore[arg-type]
        call, query = await waiting_call(client, heard)
        await reject(person, query)
        assert (await asyncio.wait_for(call, 15)).isError
    finally:
        await host.close()


async def test_a_client_that_listed_the_resources_hears_when_a_document_is_added(runtime: Runtime) -> None:
    server = KommandantMCP(lambda: runtime, local=Caller(user="kim", role="operator"))
    heard, quiet = Heard(), Heard()
    async with (
        create_connected_server_and_client_session(server, message_handler=heard) as client,
        create_connected_server_and_client_session(server, message_handler=quiet) as bystander,
        server.watching(),
    ):
        capabilities = client.get_server_capabilities()
        assert capabilities is not None and capabilities.resources is not None
        assert capabilities.resources.listChanged and capabilities.resources.subscribe
        assert KNOWLEDGE in {str(r.uri) for r in (await client.list_resources()).resources}
        await client.subscribe_resource(KNOWLEDGE)  # type: ignore[arg-type]
        await bystander.list_tools()  # listed the tools, not the resources
        title = f"kites {uuid.uuid4().hex[:6]}"
        added = await client.call_tool("knowledge_add", {"title": title, "content": "Kites fly in wind."})
        assert not added.isError, added.content

        async def told() -> bool:
            return heard.resources_changed() >= 1 and heard.updated(KNOWLEDGE) >= 1

        await wait_for(told, timeout=10)
        listed = await client.read_resource(KNOWLEDGE)  # type: ignore[arg-type]
        assert title in listed.contents[0].text  # type: ignore[union-attr]
        told_before = heard.resources_changed()
        await asyncio.sleep(2.5)  # another look: nothing was added since
        assert heard.resources_changed() == told_before
        assert quiet.resources_changed() == 0


async def test_agents_subscribers_hear_when_a_replica_starts_and_stops(runtime: Runtime) -> None:
    assert runtime.services is not None
    server = KommandantMCP(lambda: runtime, local=Caller(user="vic", role="viewer"))
    heard, quiet = Heard(), Heard()
    async with (
        create_connected_server_and_client_session(server, message_handler=heard) as client,
        create_connected_server_and_client_session(server, message_handler=quiet),
        server.watching(),
    ):
        await client.subscribe_resource(AGENTS)  # type: ignore[arg-type]
        await asyncio.wait_for(server.following_agents.wait(), 10)
        await asyncio.sleep(1.0)  # the running replicas beat (every 0.3 s): no news
        assert heard.updated(AGENTS) == 0
        replica = AgentWorker(BUILTIN_AGENTS["memory"](runtime.services))
        async with replica:

            async def started() -> bool:
                return heard.updated(AGENTS) >= 1

            await wait_for(started, timeout=10)
            status = await client.read_resource(AGENTS)  # type: ignore[arg-type]
            assert '"instances": 2' in status.contents[0].text  # type: ignore[union-attr]
            await asyncio.sleep(1.0)  # its own later heartbeats are no news either
            assert heard.updated(AGENTS) == 1

        async def stopped() -> bool:
            return heard.updated(AGENTS) >= 2

        await wait_for(stopped, timeout=10)
        assert quiet.updated(AGENTS) == 0, "a session that did not subscribe hears nothing"
