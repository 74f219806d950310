"""The real MCP server on both transports, reached with the SDK's own client.

stdio: ``kommandant mcp`` as a subprocess (the command an IDE runs). HTTP: ``kommandant mcp --http``'s app
under uvicorn on a free port, with bearer tokens made by the token repository. Both run their own
Runtime on the test database; the test keeps another Runtime to act as a person elsewhere (deciding
approvals), so a decision reaches the server the way it does in production: through Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
import pytest_asyncio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.session import LoggingFnT, MessageHandlerFnT
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.context import RequestContext

from assistant.runtime import Runtime
from settings import Settings
from storage import Database
from storage.tokens import TokenRepository

T = TypeVar("T")
KOMMANDANT = str(Path(sys.executable).parent / "kommandant")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database: Database, data_dir: Path) -> dict[str, str]:
    """Environment of a ``kommandant`` subprocess on the test database (no broker, no LLM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        KOMMANDANT_DATABASE_URL=database.url,
        KOMMANDANT_DATA_DIR=str(data_dir),
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_HEARTBEAT_INTERVAL="0.5",
        KOMMANDANT_APPROVAL_TTL="60",
        KOMMANDANT_LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="kommandant-mcp-test-"))


@pytest.fixture(scope="module")
def mcp_settings(database: Database, data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=database.url,
        amqp_url=None,
        llm_model="",
        heartbeat_interval=0.5,
        approval_ttl=60.0,
        call_timeout=10.0,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def person(mcp_settings: Settings, database: Database) -> AsyncIterator[Runtime]:
    """A Kommandant in the test process: a person deciding approvals in another front door."""
    async with Runtime(mcp_settings, database=database) as rt:
        yield rt


@dataclass
class Elicitor:
    """Answers the server's elicitations as a person in the IDE would: ``answers`` are used in order."""

    answers: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    async def __call__(
        self, context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        self.asked.append(params.message)
        action = self.answers.pop(0) if self.answers else "cancel"
        if action == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        if action == "refuse":
            return types.ElicitResult(action="accept", content={"approve": False})
        return types.ElicitResult(action=action)


Opener = Callable[[Elicitor | None], contextlib.AbstractAsyncContextManager[ClientSession]]


class Held(Generic[T]):
    """Keeps an async context open across tests or fixtures: the SDK's transports use anyio task groups,
    which must be entered and left by the same task, so one background task owns the context."""

    def __init__(self, context: Callable[[], contextlib.AbstractAsyncContextManager[T]]) -> None:
        self._context = context
        self._ready: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._own())

    async def _own(self) -> None:
        try:
            async with self._context() as value:
                self._ready.set_result(value)
                await self._stop.wait()
        except BaseException as err:
            if not self._ready.done():
                self._ready.set_exception(err)
            raise

    async def value(self) -> T:
        async with asyncio.timeout(60):
            return await asyncio.shield(self._ready)

    async def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(BaseException):
            await self._task


def SessionHost(open_session: Opener, elicitor: Elicitor | None) -> Held[ClientSession]:
    """A client session held open by a background task."""
    return Held(lambda: open_session(elicitor))


@dataclass
class Client:
    """One transport: ``session`` can elicit (answers from ``elicitor``), ``plain`` cannot."""

    transport: str
    session: ClientSession
    plain: ClientSession
    elicitor: Elicitor
    user: str
    url: str | None = None
    token: str | None = None


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    """Run an ASGI app under uvicorn on 127.0.0.1:``port`` (lifespan on) for the duration of the block."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(90):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http_server(mcp_settings: Settings) -> AsyncIterator[str]:
    """``kommandant mcp --http``'s app under uvicorn; yields the endpoint URL."""
    from mcp_server.http import create_app

    port = free_port()
    async with serving(create_app(mcp_settings.model_copy(update={"port": port})), port):
        yield f"http://127.0.0.1:{port}/mcp"


async def make_token(database: Database, name: str, role: str, user: str) -> str:
    _, token = await TokenRepository(database.sessionmaker).create(name, role=role, user_id=user)  # type: ignore[arg-type]
    return token


def http_opener(
    url: str,
    token: str | None,
    headers: dict[str, str] | None = None,
    *,
    on_log: LoggingFnT | None = None,
    on_message: MessageHandlerFnT | None = None,
) -> Opener:
    @contextlib.asynccontextmanager
    async def open_session(elicitor: Elicitor | None) -> AsyncIterator[ClientSession]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with (
            create_mcp_http_client(headers=sent) as http,
            streamable_http_client(url, http_client=http) as (read, write, _),
            ClientSession(
                read,
                write,
                elicitation_callback=elicitor,
                logging_callback=on_log,
                message_handler=on_message,
            ) as session,
        ):
            await session.initialize()
            yield session

    return open_session


def stdio_opener(database: Database, data_dir: Path, *, on_log: LoggingFnT | None = None) -> Opener:
    @contextlib.asynccontextmanager
    async def open_session(elicitor: Elicitor | None) -> AsyncIterator[ClientSession]:
        params = StdioServerParameters(
            command=KOMMANDANT, args=["mcp"], env=server_env(database, data_dir), cwd=str(data_dir)
        )
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write, elicitation_callback=elicitor, logging_callback=on_log) as session,
        ):
            await session.initialize()
            yield session

    return open_session


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["stdio", "http"])
async def client(
    request: pytest.FixtureRequest, database: Database, data_dir: Path, person: Runtime, http_server: str
) -> AsyncIterator[Client]:
    """An MCP client on each transport, with a session that can elicit and one that cannot."""
    url = token = None
    if request.param == "stdio":
        opener, user = stdio_opener(database, data_dir), "local"
    else:
        url = http_server
        user = "ide-user"
        token = await make_token(database, f"contract-{os.getpid()}-{id(request)}", "admin", user)
        opener = http_opener(url, token)
    elicitor = Elicitor()
    hosts = [SessionHost(opener, elicitor), SessionHost(opener, None)]
    try:
        session, plain = [await host.value() for host in hosts]
        yield Client(request.param, session, plain, elicitor, user, url, token)
    finally:
        for host in hosts:
            await host.close()


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:  # noqa: ASYNC109
    """Poll ``check`` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():  # the state lives in another process's database: poll it
            if value := await check():
                return value
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")
