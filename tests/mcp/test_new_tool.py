"""A new tool, defined only in a test (tests/tools/test_new_tool.py) and served by a test agent, is listed
and called over MCP with the same policy and audit as the built-in tools: its private argument reaches
the audit trail as a hash only."""

from __future__ import annotations

import json

from mcp.shared.memory import create_connected_server_and_client_session
from pydantic import BaseModel
from sqlalchemy import text

from agents import Agent, AgentWorker, CallContext
from assistant.runtime import Runtime
from mcp_server import Caller, KommandantMCP
from settings import Settings
from storage import Database
from storage.audit import AuditLog
from storage.audit_key import audit_key
from tests.tools.test_new_tool import DIARY_WRITE, DiaryWriteInput, Done
from tools import private_digest

SECRET = "the fern is my password hint"


class DiaryAgent(Agent):
    """Keeps diary entries in memory: enough to show a new agent serving a new tool."""

    name = "diary"
    description = "A diary."

    def __init__(self, services: object) -> None:
        super().__init__(services)  # type: ignore[arg-type]
        self.entries: list[str] = []
        self.register(DIARY_WRITE, self.write)

    async def write(self, args: DiaryWriteInput, ctx: CallContext) -> BaseModel:
        self.entries.append(args.entry)
        return Done(text=f"Written ({len(self.entries)} entries).")


async def test_a_new_tool_is_listed_called_and_audited_over_mcp(db: Database, settings: Settings) -> None:
    async with Runtime(settings, database=db) as rt:
        assert rt.services is not None
        rt.services.catalog.register(DIARY_WRITE)
        diary = DiaryAgent(rt.services)
        async with AgentWorker(diary):
            server = KommandantMCP(lambda: rt, local=Caller(user="ann", role="operator"))
            async with create_connected_server_and_client_session(server) as client:
                listed = {t.name: t for t in (await client.list_tools()).tools}
                assert listed["diary_write"].inputSchema["required"] == ["entry"]
                assert listed["diary_write"].annotations is not None
                assert listed["diary_write"].annotations.readOnlyHint is False
                written = await client.call_tool("diary_write", {"entry": SECRET})
                assert not written.isError, written.content
                assert written.structuredContent == {"text": "Written (1 entries)."}
    assert diary.entries == [SECRET]
    async with db.sessionmaker() as session:
        rows = (await session.execute(text("SELECT kind, tool, data FROM audit_log"))).all()
    dumped = json.dumps([list(map(str, row)) for row in rows])
    assert SECRET not in dumped
    calls = [row for row in rows if row.kind == "tool_call" and row.tool == "diary_write"]
    assert calls and calls[0].data["arguments"] == {"entry": private_digest(SECRET, audit_key(settings))}
    assert (await AuditLog(db.sessionmaker).verify()).ok
