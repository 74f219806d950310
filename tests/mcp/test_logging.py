"""Logging and progress over MCP, on both transports: the logging capability, ``logging/setLevel``
honoured, log notifications of the caller's own calls only, progress when the client asks for it;
and what ``initialize`` says (Kommandant's version, instructions naming the agents)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pytest
import pytest_asyncio
from mcp import ClientSession, types

from storage import Database
from tests.mcp.conftest import Held, SessionHost, http_opener, make_token, stdio_opener
from tests.mcp.test_http_auth import post


@dataclass
class Listener:
    """A client session and the log messages it heard."""

    session: ClientSession
    heard: list[types.LoggingMessageNotificationParams] = field(default_factory=list)

    def texts(self, since: int = 0) -> list[tuple[str, str]]:
        return [(p.level, str(p.data)) for p in self.heard[since:]]


async def listen(opener_of: object) -> tuple[Held[ClientSession], Listener]:
    """A session opened by ``opener_of(on_log)`` whose log messages land in the returned ``Listener``."""
    heard: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        heard.append(params)

    host = SessionHost(opener_of(on_log), None)  # type: ignore[operator]
    return host, Listener(await host.value(), heard)


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["stdio", "http"])
async def listener(
    request: pytest.FixtureRequest, database: Database, data_dir: Path, http_server: str
) -> AsyncIterator[Listener]:
    if request.param == "stdio":
        host, heard = await listen(lambda on_log: stdio_opener(database, data_dir, on_log=on_log))
    else:
        token = await make_token(database, f"log-{uuid.uuid4().hex[:6]}", "operator", "logan")
        host, heard = await listen(lambda on_log: http_opener(http_server, token, on_log=on_log))
    try:
        yield heard
    finally:
        await host.close()


async def settle() -> None:
    await asyncio.sleep(0.3)  # notifications sent just before the result may be handled just after it


async def test_the_server_declares_logging_and_completions(listener: Listener) -> None:
    capabilities = listener.session.get_server_capabilities()
    assert capabilities is not None
    assert capabilities.logging is not None
    assert capabilities.completions is not None


async def test_set_level_decides_what_the_client_hears(listener: Listener) -> None:
    fact = f"my shell is zsh {uuid.uuid4().hex[:4]}"
    mark = len(listener.heard)
    assert not (await listener.session.call_tool("memory_remember", {"fact": fact})).isError
    await settle()
    assert listener.texts(mark) == [], "before logging/setLevel only notices and worse are sent"

    assert isinstance(await listener.session.set_logging_level("info"), types.EmptyResult)
    mark = len(listener.heard)
    assert not (await listener.session.call_tool("memory_remember", {"fact": fact + "!"})).isError
    await settle()
    heard = listener.texts(mark)
    assert ("info", "Running memory_remember on the memory agent.") in heard
    assert any(level == "info" and text.startswith("memory_remember finished in ") for level, text in heard)
    assert all(fact not in text for _, text in heard), "arguments are never told"

    await listener.session.set_logging_level("warning")
    mark = len(listener.heard)
    assert not (await listener.session.call_tool("memory_remember", {"fact": fact + "!!"})).isError
    failed = await listener.session.call_tool("reminders_cancel", {"reminder": "no such reminder xyz"})
    await settle()
    assert failed.isError
    heard = listener.texts(mark)
    assert heard and all(level == "warning" for level, _ in heard), heard
    assert heard[-1][1] in failed.content[0].text  # type: ignore[union-attr]


async def test_progress_is_reported_when_the_client_asks(listener: Listener) -> None:
    steps: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, message))

    result = await listener.session.call_tool("system_status", {}, progress_callback=on_progress)
    assert not result.isError
    await settle()
    assert [value for value, _ in steps] == [1, 2]
    assert steps[0][1] == "Running system_status on the system agent."
    plain = len(steps)
    await listener.session.call_tool("system_status", {})
    await settle()
    assert len(steps) == plain, "no progress without a progress token"


async def test_a_client_hears_only_its_own_calls(http_server: str, database: Database) -> None:
    tokens = [
        await make_token(database, f"iso-{uuid.uuid4().hex[:6]}", "operator", u) for u in ("ann", "bob")
    ]
    (ann_host, ann), (bob_host, bob) = [
        await listen(lambda on_log, t=token: http_opener(http_server, t, on_log=on_log)) for token in tokens
    ]
    try:
        await ann.session.set_logging_level("debug")
        await bob.session.set_logging_level("debug")
        for _ in range(3):
            await bob.session.call_tool("memory_remember", {"fact": f"bob likes tea {uuid.uuid4().hex[:4]}"})
        await settle()
        assert ann.heard == []
        assert any("memory_remember" in text for _, text in bob.texts())
    finally:
        await ann_host.close()
        await bob_host.close()


async def test_initialize_names_kommandants_version_and_its_agents(
    http_server: str, database: Database
) -> None:
    token = await make_token(database, f"init-{uuid.uuid4().hex[:6]}", "viewer", "ivy")
    response = await post(http_server, token)
    data = next(line[5:] for line in response.text.splitlines() if line.startswith("data:"))
    result = json.loads(data)["result"]
    assert result["serverInfo"] == {"name": "kommandant", "version": version("kommandant")}
    assert "memory (" in result["instructions"] and "system (" in result["instructions"]
    assert result["capabilities"]["logging"] == {}
