"""The HTTP endpoint's guards: bearer tokens (401), roles, revocation, DNS-rebinding protection, and
tokens never written to logs or the audit trail; plus the `kommandant tokens` commands."""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from mcp import types

from storage import Database
from storage.audit import AuditLog
from storage.tokens import TokenRepository
from tests.mcp.conftest import KOMMANDANT, SessionHost, http_opener, make_token, server_env

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": types.LATEST_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def post(url: str, token: str | None = None, **headers: str) -> httpx.Response:
    sent = dict(HEADERS, **headers)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=INITIALIZE, headers=sent)


async def test_missing_or_wrong_token_is_401(http_server: str) -> None:
    for token in (None, "kmd_" + "x" * 43, "not-even-our-format"):
        response = await post(http_server, token)
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "invalid_token"
    async with httpx.AsyncClient(timeout=10) as http:
        basic = await http.post(
            http_server, json=INITIALIZE, headers=dict(HEADERS, Authorization="Basic eDp5")
        )
    assert basic.status_code == 401


async def test_the_sdk_client_without_a_token_is_refused(http_server: str) -> None:
    host = SessionHost(http_opener(http_server, None), None)
    with pytest.raises(BaseException) as failure:
        await host.value()
    assert "401" in repr(failure.value) or "Unauthorized" in repr(failure.value)
    await host.close()


async def test_valid_token_initializes_and_revoked_token_is_401(http_server: str, database: Database) -> None:
    name = f"rev-{uuid.uuid4().hex[:6]}"
    token = await make_token(database, name, "viewer", "ann")
    ok = await post(http_server, token)
    assert ok.status_code == 200
    await TokenRepository(database.sessionmaker).revoke(name)
    assert (await post(http_server, token)).status_code == 401


async def test_dns_rebinding_protection_refuses_foreign_hosts_and_origins(
    http_server: str, database: Database
) -> None:
    token = await make_token(database, f"dns-{uuid.uuid4().hex[:6]}", "viewer", "ann")
    assert (await post(http_server, token, Host="evil.example.com")).status_code == 421
    assert (await post(http_server, token, Origin="http://evil.example.com")).status_code == 403
    assert (await post(http_server, token, Origin="http://localhost:3000")).status_code == 200


async def test_viewer_may_read_but_not_write(http_server: str, database: Database) -> None:
    token = await make_token(database, f"viewer-{uuid.uuid4().hex[:6]}", "viewer", "vic")
    host = SessionHost(http_opener(http_server, token), None)
    try:
        session = await host.value()
        read = await session.call_tool("system_status", {})
        assert not read.isError
        write = await session.call_tool("memory_remember", {"fact": "my editor is vim"})
        assert write.isError
        assert write.content[0].text == "As a viewer you may not run memory_remember (write tool)."  # type: ignore[union-attr]
        decide = await session.call_tool("ask", {"text": "approve 123abc"})
        assert decide.structuredContent is not None
        assert "may not" in decide.structuredContent["reply"]
    finally:
        await host.close()


async def test_tokens_never_reach_logs_or_audit(
    http_server: str, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await make_token(database, f"log-{uuid.uuid4().hex[:6]}", "admin", "lou")
    wrong = "kmd_" + uuid.uuid4().hex * 2
    host = SessionHost(http_opener(http_server, token), None)
    try:
        session = await host.value()
        await session.call_tool("memory_remember", {"fact": f"my token test is {uuid.uuid4().hex[:4]}"})
        await post(http_server, wrong)
    finally:
        await host.close()
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert token not in logged and token[4:] not in logged and wrong not in logged
    rows = await AuditLog(database.sessionmaker).tail(200)
    assert token not in json.dumps([r.data for r in rows])


def test_tokens_cli_create_list_revoke(database: Database, tmp_path: Path) -> None:
    env = server_env(database, tmp_path)
    name = f"cli-{uuid.uuid4().hex[:6]}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KOMMANDANT, "tokens", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    created = cli("create", name, "--role", "viewer", "--user", "ann")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("kmd_") and len(token) > 40
    assert "not shown again" in " ".join(created.stderr.split())
    listed = cli("list", "--json")
    assert listed.returncode == 0 and token not in listed.stdout
    row = next(json.loads(line) for line in listed.stdout.splitlines() if json.loads(line)["name"] == name)
    assert row["role"] == "viewer" and row["user_id"] == "ann" and row["active"] is True
    assert token.startswith(row["prefix"]) and len(row["prefix"]) < 16
    assert cli("create", name).returncode != 0  # names are unique, with a clear sentence
    assert "exists already" in " ".join(cli("create", name).stderr.split())
    revoked = cli("revoke", name)
    assert revoked.returncode == 0 and name in revoked.stdout
    listed = cli("list", "--json")
    row = next(json.loads(line) for line in listed.stdout.splitlines() if json.loads(line)["name"] == name)
    assert row["active"] is False and row["revoked_at"]
    missing = cli("revoke", "no-such-token")
    assert missing.returncode != 0 and "no token called" in " ".join(missing.stderr.split())
