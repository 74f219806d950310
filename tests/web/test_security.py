"""Hosts, origins and CORS of the web server, auto-login only for local requests, feedback only on one's
own threads, uploads in the data folder.

The attacks are played for real: requests with a foreign ``Host`` or ``Origin`` against the running
server, a Chromium page on a DNS name rebound to 127.0.0.1, and a page on another local port that calls
the chat with the user's cookies. The auto-login ones run with the accounts table emptied for the test
(``no_accounts``), so the local admin login they try to steal is really on offer.
"""

from __future__ import annotations

import functools
import http.server
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select, text

from assistant.web.auth import LOCAL_USER, WebAuth
from assistant.web.hosts import HostPolicy, same_origin
from mcp_server.http import transport_security
from settings import Settings
from storage import Database
from storage.models import WebAccount
from storage.web_accounts import WebAccountRepository
from tests.web.chromium import CHROMIUM_ARGS, require_chromium
from tests.web.conftest import WebServer, run_async

EVIL = "evil.example"
TIMEOUT_MS = 30_000
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **{"host": "127.0.0.1", "port": 8000, **overrides})


# --- the policy, without a server ------------------------------------------------------------------


def test_allowed_hosts_are_this_machine_the_bind_address_and_the_configured_names() -> None:
    policy = HostPolicy.for_web(_settings(allowed_hosts="Kommandant.Example.org, 10.0.0.2:8443"))
    for host in ("127.0.0.1:8000", "127.0.0.1", "localhost:8000", "[::1]:8000", "kommandant.example.org"):
        assert policy.host_allowed(host), host
    assert policy.host_allowed("10.0.0.2:8443")
    for host in (None, "", f"{EVIL}:8000", EVIL, "127.0.0.1.evil.example", "10.0.0.2:8000", "0.0.0.0:8000"):
        assert not policy.host_allowed(host), host


def test_a_wildcard_bind_address_is_not_any_host() -> None:
    for bind in ("0.0.0.0", "::"):
        policy = HostPolicy.for_web(_settings(host=bind))
        assert policy.host_allowed("localhost:8000")
        assert not policy.host_allowed(f"{EVIL}:8000") and not policy.host_allowed("0.0.0.0:8000")
    named = HostPolicy.for_web(_settings(host="192.168.1.20"))
    assert named.host_allowed("192.168.1.20:8000") and named.host_allowed("192.168.1.20")


def test_origins_are_the_server_itself_or_configured() -> None:
    policy = HostPolicy.for_web(_settings(cors_origins="https://Intranet.example.org/"))
    assert policy.origin_allowed(None, "127.0.0.1:8000")  # not from a page
    assert policy.origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert policy.origin_allowed("https://intranet.example.org", "127.0.0.1:8000")
    for origin in ("http://127.0.0.1:5173", "http://localhost:8000", f"http://{EVIL}:8000", "null"):
        assert not policy.origin_allowed(origin, "127.0.0.1:8000"), origin
    assert replace(policy, any_origin=True).origin_allowed(f"http://{EVIL}", "127.0.0.1:8000")
    assert same_origin("https://localhost:8000", "LOCALHOST:8000")
    assert not same_origin("ftp://localhost:8000", "localhost:8000")


def test_bad_host_and_origin_settings_are_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="not a host name"):
        _settings(allowed_hosts="*")
    with pytest.raises(ValueError, match="not a host name"):
        _settings(allowed_hosts="https://kommandant.example.org")
    with pytest.raises(ValueError, match="not an origin"):
        _settings(cors_origins="*")
    with pytest.raises(ValueError, match="not an origin"):
        _settings(cors_origins="https://intranet.example.org/app")
    assert _settings(cors_origins='["http://a.example:3000"]').cors_origins == ["http://a.example:3000"]


def test_mcp_shares_the_allowed_hosts_and_origins() -> None:
    security = transport_security(
        _settings(
            host="0.0.0.0", allowed_hosts="kommandant.example.org", cors_origins="https://i.example.org"
        )
    )
    assert "kommandant.example.org:*" in security.allowed_hosts
    assert "https://i.example.org" in security.allowed_origins
    assert not any(h.startswith("0.0.0.0") for h in security.allowed_hosts)


async def test_auto_login_only_for_a_local_request(db: Database, tmp_path: Path) -> None:
    settings = _settings(
        data_dir=tmp_path, database_url=db.url, amqp_url=None, cors_origins="https://i.example.org"
    )
    auth = WebAuth(settings, WebAccountRepository(db.sessionmaker))
    local = await auth.header_login({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"})
    assert local is not None and local.user == LOCAL_USER
    assert await auth.header_login({"host": "localhost:8000"}) is not None
    for headers in (
        {},
        {"host": f"{EVIL}:8000"},
        {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:5173"},
        {"host": "127.0.0.1:8000", "origin": f"http://{EVIL}:8000"},
        {"host": "127.0.0.1:8000", "origin": "https://i.example.org"},  # CORS allowed, still no auto-login
    ):
        assert await auth.header_login(headers) is None, headers


# --- the running server ----------------------------------------------------------------------------


@pytest.fixture
def no_accounts(web_server: WebServer) -> Iterator[None]:
    """The web accounts are set aside for the test (auto-login is on offer) and put back after it."""

    async def take() -> list[dict[str, Any]]:
        async with Database(web_server.database_url, migrate=False) as db, db.sessionmaker() as session:
            rows = [dict(r._mapping) for r in await session.execute(select(WebAccount.__table__))]
            await session.execute(delete(WebAccount))
            await session.commit()
            return rows

    async def put_back(rows: list[dict[str, Any]]) -> None:
        async with Database(web_server.database_url, migrate=False) as db, db.sessionmaker() as session:
            if rows:
                await session.execute(insert(WebAccount.__table__), rows)
            await session.commit()

    rows = run_async(take())
    try:
        yield
    finally:
        run_async(put_back(rows))


def _at(web_server: WebServer, host: str) -> str:
    return f"{host}:{web_server.settings.port}"


def test_a_foreign_host_gets_no_token_and_no_page(web_server: WebServer, no_accounts: None) -> None:
    chat = web_server.chat
    own = httpx.post(f"{chat}/auth/header")  # Host: 127.0.0.1:<port>
    assert own.status_code == 200 and "access_token" in own.headers.get("set-cookie", "")
    config = httpx.get(f"{chat}/auth/config", headers={"Host": _at(web_server, "localhost")})
    assert config.json()["headerAuth"] is True
    for host in (_at(web_server, EVIL), EVIL):
        stolen = httpx.post(f"{chat}/auth/header", headers={"Host": host})
        assert stolen.status_code == 421, stolen.text
        assert "set-cookie" not in stolen.headers and "access_token" not in stolen.text
        assert stolen.text.count("\n") == 1 and "host name" in stolen.text
        page = httpx.get(chat, headers={"Host": host})
        assert page.status_code == 421 and "<html" not in page.text.lower()
        assert httpx.get(f"{chat}/auth/config", headers={"Host": host}).status_code == 421
    assert httpx.get(f"{web_server.url}/healthz", headers={"Host": _at(web_server, EVIL)}).status_code == 421
    assert httpx.get(f"{web_server.url}/healthz").json() == {"status": "ok"}


def test_another_origin_is_refused_without_cors_headers(web_server: WebServer, no_accounts: None) -> None:
    cookies = httpx.post(f"{web_server.chat}/auth/header").cookies
    threads = f"{web_server.chat}/project/threads"
    body = {"pagination": {"first": 5}, "filter": {}}
    own = httpx.post(threads, json=body, cookies=cookies, headers={"Origin": web_server.url})
    assert own.status_code == 200 and "data" in own.json()
    other = f"http://127.0.0.1:{_free_port()}"
    refused = httpx.post(threads, json=body, cookies=cookies, headers={"Origin": other})
    assert refused.status_code == 403 and "data" not in refused.text
    assert "access-control-allow-origin" not in refused.headers
    preflight = httpx.options(threads, headers={"Origin": other, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    login = httpx.post(f"{web_server.chat}/auth/header", headers={"Origin": other})
    assert login.status_code == 403 and "set-cookie" not in login.headers
    # /mcp keeps the MCP SDK's rule (bearer tokens, no cookies): local ports pass, then a token is asked.
    # The OAuth form_post callback is posted by the provider's page: its Origin is not checked there.
    callback = httpx.post(f"{web_server.chat}/auth/oauth/azure-ad-hybrid/callback", headers={"Origin": other})
    assert callback.status_code not in (403, 421)
    mcp = f"{web_server.url}/mcp"
    assert httpx.post(mcp, json={}, headers={"Origin": other}).status_code == 401
    assert httpx.post(mcp, json={}, headers={"Origin": f"http://{EVIL}"}).status_code == 403


async def test_the_chat_socket_refuses_a_foreign_origin(web_server: WebServer) -> None:
    import websockets

    url = f"ws://127.0.0.1:{web_server.settings.port}/chat/ws/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, origin=web_server.url) as ws:  # type: ignore[arg-type]
        assert (await ws.recv()).startswith("0")  # Engine.IO's open packet
    for origin in (f"http://{EVIL}:{web_server.settings.port}", "http://127.0.0.1:1"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, origin=origin):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403


def test_uploads_are_kept_in_the_data_folder(web_server: WebServer) -> None:
    import chainlit.config
    from chainlit.session import BaseSession

    folder = web_server.settings.data_dir / "files"
    assert folder == chainlit.config.FILES_DIRECTORY and folder.is_dir()
    assert folder.stat().st_mode & 0o077 == 0
    assert BaseSession.files_dir.fget(SimpleNamespace(id="s1")) == folder / "s1"  # type: ignore[attr-defined]


# --- feedback ----------------------------------------------------------------------------------------


def test_feedback_only_on_ones_own_threads(web_server: WebServer) -> None:
    ann, ben = (f"sec-{name}-{uuid.uuid4().hex[:6]}" for name in ("ann", "ben"))
    password = "feedback-password-1"
    for name in (ann, ben):
        run_async(web_server.add_account(name, password, "operator"))
    try:
        as_ann, as_ben = (_signed_in(web_server, name, password) for name in (ann, ben))
        ann_thread, ann_step = run_async(_thread_with_a_step(web_server, ann))
        ben_thread, ben_step = run_async(_thread_with_a_step(web_server, ben))
        url = f"{web_server.chat}/feedback"

        def put(client: httpx.Client, **feedback: Any) -> httpx.Response:
            return client.put(url, json={"feedback": {"value": 1, **feedback}, "sessionId": "s"})

        assert put(as_ben, forId=ann_step, threadId=ann_thread).status_code == 403
        assert put(as_ben, forId=str(uuid.uuid4())).status_code == 403  # no such step
        assert put(as_ben, forId="not-a-uuid").status_code == 403
        saved = put(as_ann, forId=ann_step, threadId=ben_thread, comment="good")  # thread: ann's own
        assert saved.status_code == 200, saved.text
        feedback_id = saved.json()["feedbackId"]
        # Ben may not take Ann's feedback over by its id, nor delete it.
        assert put(as_ben, id=feedback_id, forId=ben_step, value=0).status_code == 403
        assert as_ben.request("DELETE", url, json={"feedbackId": feedback_id}).status_code == 403
        assert run_async(_feedback(web_server, feedback_id)) == (ann_step, ann_thread, 1, "good")
        assert as_ann.request("DELETE", url, json={"feedbackId": feedback_id}).status_code == 200
        assert run_async(_feedback(web_server, feedback_id)) is None
    finally:
        run_async(_remove_accounts(web_server, ann, ben))


def _signed_in(web_server: WebServer, name: str, password: str) -> httpx.Client:
    client = httpx.Client()
    response = client.post(f"{web_server.chat}/login", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return client


async def _thread_with_a_step(web_server: WebServer, user: str) -> tuple[str, str]:
    thread, step = str(uuid.uuid4()), str(uuid.uuid4())
    async with Database(web_server.database_url, migrate=False) as db, db.engine.begin() as conn:
        user_id = (
            await conn.execute(text('SELECT "id" FROM users WHERE "identifier" = :u'), {"u": user})
        ).scalar_one()
        await conn.execute(
            text('INSERT INTO threads ("id", "userId", "userIdentifier", "name") VALUES (:t, :uid, :u, :u)'),
            {"t": thread, "uid": user_id, "u": user},
        )
        await conn.execute(
            text(
                'INSERT INTO steps ("id", "name", "type", "threadId", "streaming", "output") '
                "VALUES (:s, 'Kommandant', 'assistant_message', :t, false, 'hello')"
            ),
            {"s": step, "t": thread},
        )
    return thread, step


async def _feedback(web_server: WebServer, feedback_id: str) -> tuple[str, str, int, str] | None:
    async with Database(web_server.database_url, migrate=False) as db, db.engine.connect() as conn:
        row = (
            await conn.execute(
                text('SELECT "forId", "threadId", "value", "comment" FROM feedbacks WHERE "id" = :f'),
                {"f": feedback_id},
            )
        ).first()
    return None if row is None else (str(row[0]), str(row[1]), int(row[2]), str(row[3]))


async def _remove_accounts(web_server: WebServer, *names: str) -> None:
    async with Database(web_server.database_url, migrate=False) as db, db.sessionmaker() as session:
        await session.execute(delete(WebAccount).where(WebAccount.username.in_(names)))
        await session.commit()


# --- in Chromium -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium that resolves ``evil.example`` to 127.0.0.1, as a rebinding DNS server would."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"]
        )
        yield browser
        browser.close()


def _context(chromium: Any) -> Any:
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    return context


def test_a_page_on_a_rebound_name_cannot_sign_in_or_chat(
    web_server: WebServer, no_accounts: None, chromium: Any
) -> None:
    own = _context(chromium).new_page()
    own.goto(web_server.chat)  # the control: the same browser, the server's own name, auto-login works
    own.get_by_text("signed in automatically as the local admin").wait_for()
    own.context.close()

    context = _context(chromium)
    page = context.new_page()
    statuses: list[tuple[str, int]] = []
    page.on("response", lambda r: statuses.append((r.url, r.status)))
    rebound = f"http://{_at(web_server, EVIL)}"
    response = page.goto(f"{rebound}/chat")
    assert response is not None and response.status == 421
    login = page.evaluate("() => fetch('/chat/auth/header', {method: 'POST'}).then(r => r.status)")
    assert login == 421
    page.wait_for_timeout(2_000)
    assert page.locator("#chat-input").count() == 0
    assert "host name" in page.inner_text("body")
    assert statuses and all(status == 421 for url, status in statuses if url.startswith(rebound))
    assert not [c for c in context.cookies() if c["name"] == "access_token"]
    context.close()


ATTACK_PAGE = """<!doctype html><title>attack</title><script>
window.results = [];
const target = '%s/chat/project/threads';
const body = JSON.stringify({pagination: {first: 20}, filter: {}});
const tries = [
  {method: 'POST', credentials: 'include', headers: {'Content-Type': 'application/json'}, body},
  {method: 'POST', credentials: 'include', headers: {'Content-Type': 'text/plain'}, body},  // no preflight
];
window.done = Promise.all(tries.map(init => fetch(target, init)
  .then(r => r.text()).then(t => window.results.push('read: ' + t))
  .catch(e => window.results.push('failed: ' + e))));
</script>"""


def test_a_page_on_another_local_port_cannot_read_the_users_threads(
    web_server: WebServer,
    no_accounts: None,
    chromium: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = _context(chromium)
    chat = context.new_page()
    chat.goto(web_server.chat)
    chat.get_by_text("signed in automatically as the local admin").wait_for()
    # The control: from the chat's own page the same request reads the threads with this login.
    own = chat.evaluate(
        """(url) => fetch(url, {method: 'POST', credentials: 'include',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({pagination: {first: 20}, filter: {}})}).then(r => r.json())""",
        f"{web_server.chat}/project/threads",
    )
    assert "data" in own

    (tmp_path / "attack.html").write_text(ATTACK_PAGE % web_server.url, encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="assistant.web.hosts")
    with _static_site(tmp_path) as site:
        attack = context.new_page()
        attack.goto(f"{site}/attack.html")
        attack.evaluate("() => window.done")
        results = attack.evaluate("() => window.results")
    assert len(results) == 2 and all(r.startswith("failed") for r in results), results
    # Both reached the server (the JSON one as its preflight) with the cookie, and both were refused.
    refused = [r for r in caplog.records if r.name == "assistant.web.hosts" and site in r.getMessage()]
    assert len(refused) >= 2, [r.getMessage() for r in caplog.records]
    context.close()


class _StaticSite:
    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _static_site(folder: Path) -> _StaticSite:
    """A tiny web server on another local port serving ``folder``: the attacker's page."""
    return _StaticSite(folder)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
