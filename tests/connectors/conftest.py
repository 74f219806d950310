"""A whole Kommandant (real database, the in-process bus, every built-in agent) with the connectors
mounted in a real HTTP server (uvicorn on a free port), and a local Slack Web API server."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from starlette.applications import Starlette

from agents import BUILTIN_AGENTS
from assistant.runtime import Runtime
from connectors.registry import Backoff
from connectors.web import ConnectorHub, mount
from settings import Settings, WebhookConfig
from storage import Database
from storage.models import Base
from tests.connectors.slack_server import TOKEN, SlackServer

SIGNING_SECRET = "test-signing-secret-0123456789ab"
HOOK_SECRET = "hook-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """The running pieces a connector test talks to."""

    runtime: Runtime
    hub: ConnectorHub
    slack: SlackServer
    url: str
    http: httpx.AsyncClient

    async def slack_event(
        self,
        body: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` to /slack/events signed as Slack signs it (``SignatureVerifier``)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = str(SignatureVerifier(secret).generate_signature(timestamp=ts, body=body))
        sent = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature, "Content-Type": content_type}
        return await self.http.post(
            f"{self.url}/slack/events", content=body, headers={**sent, **(headers or {})}
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(database: Database, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One Kommandant with its connectors per test module (starting one takes seconds): the tests of a
    module keep apart by their own users, channels and threads. The database is emptied first."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with database.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    async with SlackServer() as slack_api:
        configured = Settings(
            _env_file=None,
            data_dir=tmp_path_factory.mktemp("data"),
            database_url=database.url,
            amqp_url=None,
            heartbeat_interval=0.3,
            call_timeout=10.0,
            llm_model="",
            slack_bot_token=SecretStr(TOKEN),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=slack_api.api_url,
            slack_update_seconds=0.0,
            connector_check_seconds=0.3,
            webhooks={
                "ci": WebhookConfig(secret=SecretStr(HOOK_SECRET), user="ci-bot", role="operator"),
                "alerts": WebhookConfig(secret=SecretStr(HOOK_SECRET), mode="event"),
            },
        )
        async with Runtime(configured, agents=list(BUILTIN_AGENTS), database=database) as rt:
            app = Starlette()
            hub = mount(app, configured, lambda: rt, backoff=Backoff(base=0.2, cap=0.5))
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            serving = asyncio.create_task(server.serve())
            try:
                async with asyncio.timeout(10):
                    while not server.started:  # noqa: ASYNC110  (uvicorn offers no event)
                        await asyncio.sleep(0.02)
                async with httpx.AsyncClient(timeout=10) as http:
                    yield Stack(rt, hub, slack_api, f"http://127.0.0.1:{port}", http)
            finally:
                server.should_exit = True
                await serving


def event_body(
    text: str, *, user: str, channel: str = "C0001", ts: str, event_id: str, kind: str = "app_mention"
) -> dict[str, Any]:
    """An Events API envelope of a mention (or a direct message: ``kind="message"``)."""
    event: dict[str, Any] = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel}
    if kind == "message":
        event["channel_type"] = "im"
    return {
        "token": "unused",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT0001", "is_bot": True}],
    }
