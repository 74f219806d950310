"""MCP mounted at /mcp in the web server of `kommandant up`: same tokens, same runtime as the chat."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from settings import Settings
from storage import Database
from tests.mcp.conftest import SessionHost, free_port, http_opener, make_token, serving
from tests.mcp.test_http_auth import post


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def web_mcp(database: Database, tmp_path_factory: object) -> AsyncIterator[str]:
    from assistant.web.server import create_app

    port = free_port()
    data_dir = Path(str(tmp_path_factory.mktemp("web")))  # type: ignore[attr-defined]
    settings = Settings(
        _env_file=None, data_dir=data_dir, database_url=database.url, amqp_url=None, llm_model="", port=port
    )
    async with serving(create_app(settings), port):
        yield f"http://127.0.0.1:{port}/mcp"


async def test_web_server_serves_mcp_with_tokens(web_mcp: str, database: Database) -> None:
    assert (await post(web_mcp)).status_code == 401
    token = await make_token(database, f"web-{uuid.uuid4().hex[:6]}", "operator", "webby")
    host = SessionHost(http_opener(web_mcp, token), None)
    try:
        session = await host.value()
        result = await session.call_tool("ask", {"text": "what's the status"})
        assert result.structuredContent is not None
        assert [t["tool"] for t in result.structuredContent["tools"]] == ["system_status"]
    finally:
        await host.close()
    async with httpx.AsyncClient() as http:
        health = await http.get(web_mcp.replace("/mcp", "/healthz"))
    assert health.json() == {"status": "ok"}
