"""A real web server with the control panel mounted (``mount_control_panel`` on a FastAPI app whose
lifespan opens the runtime, the web logins and sessions as ``kommandant up`` does), under uvicorn in a
thread, on a database of its own.

The chat itself (Chainlit) is not mounted here: Chainlit keeps its hooks in module globals, so one
process serves one chat, and tests/web's server has it. Everything the panel uses is real: Postgres,
the bus, every agent, the token store, the login sessions.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from sqlalchemy import text

from settings import Settings
from storage import Database
from tests.web.conftest import run_async

ROLES = ("admin", "operator", "viewer")


@dataclass
class PanelServer:
    """The running server: its URL, settings, database URL and a bearer token per role."""

    url: str
    settings: Settings
    database_url: str
    secret: str
    tokens: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        """The Authorization header of the token of the user called ``role`` with that role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def login_cookie(self, user: str, role: str) -> str:
        """A web login (account, live session, signed login token) as the chat would issue it."""
        from storage.web_accounts import WebAccountRepository
        from storage.web_sessions import WebSessionRepository

        async with Database(self.database_url, migrate=False) as db:
            accounts = WebAccountRepository(db.sessionmaker)
            if await accounts.get(user) is None:
                await accounts.add(user, "a long enough password 1", role)
            sessions = WebSessionRepository(db.sessionmaker)
            session = (await sessions.create(user, "password")).id
        claims = {"identifier": user, "metadata": {"role": role, "session": str(session)}}
        return jwt.encode(claims, self.secret, algorithm="HS256")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def panel_app(settings: Settings) -> Any:
    """The web server's shape without the chat: runtime, logins and sessions in the lifespan, the panel."""
    from fastapi import FastAPI

    from assistant.runtime import Runtime
    from assistant.web.auth import WebAuth, ensure_auth_secret
    from assistant.web.panel import mount_control_panel
    from assistant.web.sessions import open_sessions
    from storage.web_accounts import WebAccountRepository

    secret = ensure_auth_secret(settings)
    held: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with Runtime(settings, scheduler=True) as rt:
            assert rt.services is not None
            maker = rt.services.database.sessionmaker
            held["auth"] = WebAuth(settings, WebAccountRepository(maker))
            held["sessions"] = open_sessions(settings, maker, secret)[0]
            held["runtime"] = rt
            yield
            held.clear()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok" if "runtime" in held else "starting"}

    def runtime() -> Any:
        return held["runtime"]

    app.state.panel = mount_control_panel(
        app,
        settings,
        runtime,
        sessions=lambda: held.get("sessions"),
        web_auth=lambda: held.get("auth"),
        ping=1.0,
        poll=0.1,
    )
    app.state.secret = secret
    return app


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def panel_database_url(database: Database) -> AsyncIterator[str]:
    """A database of the panel tests' own on the session server (other tests truncate theirs)."""
    name = f"t_panel_{uuid.uuid4().hex[:8]}"
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield database.engine.url.set(database=name).render_as_string(hide_password=False)
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _tokens(database_url: str) -> dict[str, str]:
    from storage.tokens import TokenRepository

    async with Database(database_url) as db:  # migrates the new database first
        repository = TokenRepository(db.sessionmaker)
        return {role: (await repository.create(role, role=role, user_id=role))[1] for role in ROLES}  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def panel_server(panel_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanelServer]:
    """Start the panel's server with every agent in-process and wait for it."""
    import uvicorn

    tokens = run_async(_tokens(panel_database_url))
    port = _free_port()
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("paneldata"),
        database_url=panel_database_url,
        amqp_url=None,
        host="127.0.0.1",
        port=port,
        heartbeat_interval=0.5,
        approval_ttl=120,
        llm_model="",
        log_level="WARNING",
    )
    app = panel_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, name="panel-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json().get("status") == "ok":
                break
        except httpx.HTTPError:
            pass
        if not thread.is_alive():
            pytest.fail("the panel server stopped while starting; see the log above")
        time.sleep(0.2)
    else:
        pytest.fail("the panel server did not become ready within 120 s")
    yield PanelServer(
        url=url,
        settings=settings,
        database_url=panel_database_url,
        secret=app.state.secret,
        tokens=tokens,
        state={"app": app},
    )
    server.should_exit = True
    thread.join(timeout=30)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"not true within {timeout} s")


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
