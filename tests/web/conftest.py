"""The real web server (``create_app`` under uvicorn, in a thread) on a database of its own.

Chainlit keeps its hooks in module globals, so one server serves the whole test session; tests that
need "no account yet" run before the ones that add accounts (see test_browser.py).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from settings import Settings
from storage import Database
from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium

T = TypeVar("T")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
TRUSTED_PROXY = "127.0.0.2"
"""A reverse proxy the web server believes (``KOMMANDANT_TRUSTED_PROXIES``): a client that connects from
this loopback address plays it; one from 127.0.0.1 is an ordinary, untrusted client."""


@dataclass
class WebServer:
    """A running ``kommandant up`` equivalent: its base URL, settings and database URL."""

    url: str
    settings: Settings
    database_url: str

    @property
    def chat(self) -> str:
        return f"{self.url}/chat"

    async def add_account(self, username: str, password: str, role: str) -> None:
        from storage.web_accounts import WebAccountRepository

        async with Database(self.database_url, migrate=False) as db:
            await WebAccountRepository(db.sessionmaker).add(username, password, role)


@pytest.fixture(scope="module", autouse=True)
def _chromium_present(request: pytest.FixtureRequest) -> None:
    """A test module that imports ``CHROMIUM`` launches it: without it the module skips (fails under
    CI=true) with the package to install, before its own fixtures start."""
    if hasattr(request.module, "CHROMIUM"):
        require_chromium()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def web_database_url(database: Database) -> AsyncIterator[str]:
    """A database of the web tests' own on the session server (other tests truncate theirs)."""
    name = f"t_web_{uuid.uuid4().hex[:8]}"
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield database.engine.url.set(database=name).render_as_string(hide_password=False)
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def web_server(web_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """Start the web app with every agent in-process (the embedded default's shape) and wait for it."""
    import uvicorn

    from assistant.web.server import create_app

    port = _free_port()
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("webdata"),
        database_url=web_database_url,
        amqp_url=None,
        host="127.0.0.1",
        port=port,
        heartbeat_interval=0.5,
        approval_ttl=120,
        llm_model="",
        log_level="WARNING",
        trusted_proxies=TRUSTED_PROXY,
    )
    app = create_app(settings)
    server = uvicorn.Server(  # proxy headers as `serve` has them: believed from trusted_proxies only
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, name="web-server", daemon=True)
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
            pytest.fail("the web server stopped while starting; see the log above")
        time.sleep(0.2)
    else:
        pytest.fail("the web server did not become ready within 120 s")
    yield WebServer(url=url, settings=settings, database_url=web_database_url)
    server.should_exit = True
    thread.join(timeout=30)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a synchronous Playwright test (whose thread already runs Playwright's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The web tests' screenshot folder, emptied once per run (so every module's screenshots stay)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser(artifacts: Path) -> Iterator[object]:
    """Headless Chromium for one module's tests."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
    print(f"\nweb test screenshots: {artifacts}")
