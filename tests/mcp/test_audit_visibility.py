"""Over MCP (bearer tokens per role) the audit trail shows a viewer only their own rows, through the
``audit_recent`` tool and the ``kommandant://audit`` resource alike; an admin token sees everyone's."""

from __future__ import annotations

import json
import uuid
from typing import Any

from mcp import ClientSession, types
from sqlalchemy import text

from assistant.events import Turn
from assistant.runtime import Runtime
from storage import Database
from tests.mcp.conftest import SessionHost, http_opener, make_token


async def _audit_tool(session: ClientSession) -> list[dict[str, Any]]:
    result = await session.call_tool("audit_recent", {"limit": 500})
    assert not result.isError and result.structuredContent is not None, result.content
    rows: list[dict[str, Any]] = result.structuredContent["rows"]
    return rows


async def _audit_resource(session: ClientSession) -> list[dict[str, Any]]:
    result = await session.read_resource("kommandant://audit")  # type: ignore[arg-type]
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    rows: list[dict[str, Any]] = json.loads(content.text)["rows"]
    return rows


async def _owners(database: Database, seqs: list[int]) -> set[str]:
    async with database.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT DISTINCT coalesce(owner, actor) FROM audit_log WHERE seq = ANY(:s)"), {"s": seqs}
        )
        return {owner for (owner,) in found}


async def test_a_viewer_token_reads_only_their_own_audit_rows(
    http_server: str, database: Database, person: Runtime
) -> None:
    tag = uuid.uuid4().hex[:6]
    viewer, other, admin = f"vera{tag}", f"otto{tag}", f"root{tag}"
    assert person.kommandant is not None
    secret = f"remember that my bank pin is 86{tag}"
    said = Turn(text=secret, user=other, channel="web", role="operator")
    assert [e async for e in person.kommandant.handle(said)]
    sessions = {
        who: SessionHost(
            http_opener(http_server, await make_token(database, f"audit-{who}", role, who)), None
        )
        for who, role in ((viewer, "viewer"), (admin, "admin"))
    }
    try:
        seeing = await sessions[viewer].value()
        await seeing.call_tool("system_status", {})
        by_tool, by_resource = await _audit_tool(seeing), await _audit_resource(seeing)
        everyone = await _audit_tool(await sessions[admin].value())
    finally:
        for host in sessions.values():
            await host.close()
    for rows in (by_tool, by_resource):
        assert rows and {row["actor"] for row in rows} == {viewer}
        assert await _owners(database, [row["seq"] for row in rows]) == {viewer}
        assert other not in json.dumps(rows) and f"86{tag}" not in json.dumps(rows)
    assert {viewer, other} <= {row["actor"] for row in everyone}
    assert f"86{tag}" not in json.dumps(everyone)
