"""MCP resources are read through the catalog's read tools as the caller: a viewer sees only their own
remembered facts, and every read is on the audit trail like any tool call."""

from __future__ import annotations

import json
import uuid
from typing import Any

from mcp import ClientSession, types

from storage import Database
from storage.audit import AuditLog
from storage.memory import MemoryRepository
from tests.mcp.conftest import SessionHost, http_opener, make_token
from tools.builtin import knowledge as knowledge_tools
from tools.builtin import memory as memory_tools


async def _read(session: ClientSession, uri: str) -> dict[str, Any]:
    result = await session.read_resource(uri)  # type: ignore[arg-type]
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    data: dict[str, Any] = json.loads(content.text)
    return data


async def test_a_viewer_reads_only_their_own_facts(http_server: str, database: Database) -> None:
    tag = uuid.uuid4().hex[:6]
    viewer, other = f"vera{tag}", f"otto{tag}"
    memories = MemoryRepository(database.sessionmaker)
    await memories.remember(user_id=viewer, content=f"my desk is {tag}", subject="desk")
    await memories.remember(user_id=other, content=f"my pin is {tag}", subject="pin")
    token = await make_token(database, f"res-{tag}", "viewer", viewer)
    host = SessionHost(http_opener(http_server, token), None)
    try:
        session = await host.value()
        memory = await _read(session, "kommandant://memory")
        knowledge = await _read(session, "kommandant://knowledge")
    finally:
        await host.close()
    assert memory["user"] == viewer
    assert [fact["fact"] for fact in memory["facts"]] == [f"my desk is {tag}"]
    assert isinstance(knowledge["entries"], list)
    rows = await AuditLog(database.sessionmaker).tail(200)
    reads = {r.tool for r in rows if r.kind == "tool_call" and r.actor == viewer and r.channel == "mcp"}
    assert reads == {memory_tools.LIST.name, knowledge_tools.LIST.name}
