"""Web logins that end: session rules in Postgres, the per-request check with its short cache, and the
real server refusing a token within seconds of logout, ``users remove|passwd|role`` and the first
account; cookies ``Secure`` behind a trusted HTTPS proxy only.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from assistant.cli.main import app as cli_app
from assistant.web.sessions import (
    SESSION_CLAIM,
    WebSessions,
    bearer_token,
    request_token,
    token_from_cookies,
)
from settings import Settings
from storage import Database
from storage.models import AuditRow, WebSession
from storage.web_accounts import WebAccountRepository
from storage.web_sessions import AUTO_PROVIDER, TOUCH_RESOLUTION, WebSessionRepository
from tests.web.conftest import TRUSTED_PROXY, WebServer, run_async
from tests.web.test_security import no_accounts  # noqa: F401  (the fixture: accounts set aside)

SECRET = "a-test-secret-that-signs-login-tokens"
ENDS_WITHIN = 5.0
"""The promise: a token stops working this many seconds after its session was ended, at the latest."""


def _token(user: str, session: object, secret: str = SECRET, **claims: object) -> str:
    payload = {"identifier": user, "metadata": {"role": "viewer", SESSION_CLAIM: str(session)}, **claims}
    payload.setdefault("exp", datetime.now(UTC) + timedelta(hours=1))
    return jwt.encode(payload, secret, algorithm="HS256")


# --- reading tokens from requests, pure ---------------------------------------------------------------


def test_tokens_are_read_from_the_cookie_its_chunks_or_a_bearer_header() -> None:
    assert token_from_cookies("theme=dark; access_token=abc.def; x=1") == "abc.def"
    assert token_from_cookies("access_token_0=abc; access_token_1=.def; access_token_3=zzz") == "abc.def"
    assert token_from_cookies("other=1") is None and token_from_cookies("") is None
    assert bearer_token("Bearer  t.o.k ") == "t.o.k" and bearer_token("Basic abc") is None
    assert bearer_token(None) is None and bearer_token("Bearer ") is None
    assert request_token({"cookie": "access_token=c", "authorization": "Bearer b"}) == "c"
    assert request_token({"authorization": "Bearer b"}) == "b"


# --- the session rules in Postgres -----------------------------------------------------------------


async def test_a_session_lives_until_revoked(db: Database) -> None:
    await WebAccountRepository(db.sessionmaker).add("ann", "ann-password-1", "operator")
    sessions = WebSessionRepository(db.sessionmaker)
    first, second = await sessions.create("ann", "password"), await sessions.create("ann", "password")
    assert (await sessions.is_live(first.id)) is not None
    assert first.expires_at - first.created_at == pytest.approx(timedelta(days=7), abs=timedelta(seconds=5))
    assert await sessions.revoke(first.id) and not await sessions.revoke(first.id)
    assert await sessions.is_live(first.id) is None and await sessions.is_live(second.id) is not None
    assert await sessions.is_live("not-a-session-id") is None and await sessions.is_live(uuid.uuid4()) is None
    async with db.sessionmaker() as session:
        row = await session.get(WebSession, first.id)
    assert row is not None and row.revoked_because == "logout"


async def test_revoking_by_person_provider_or_all(db: Database) -> None:
    accounts = WebAccountRepository(db.sessionmaker)
    for name in ("ann", "ben"):
        await accounts.add(name, "long-password-1", "viewer")
    sessions = WebSessionRepository(db.sessionmaker)
    ann, _, ben2 = [await sessions.create(n, "password") for n in ("ann", "ben", "ben")]
    assert await sessions.revoke_many("gone", username="ben") == 2
    assert await sessions.is_live(ann.id) is not None and await sessions.is_live(ben2.id) is None
    assert await sessions.revoke_many("everyone out") == 1
    assert await sessions.is_live(ann.id) is None
    assert await sessions.revoke_many("again") == 0  # ended sessions are not ended twice


async def test_account_changes_end_sessions_whichever_path_made_them(db: Database) -> None:
    accounts = WebAccountRepository(db.sessionmaker)
    sessions = WebSessionRepository(db.sessionmaker)
    for name in ("pw", "role", "gone"):
        await accounts.add(name, "long-password-1", "operator")
    pw, role, gone = [await sessions.create(n, "password") for n in ("pw", "role", "gone")]
    await accounts.set_password("pw", "long-password-2")
    await accounts.set_role("role", "viewer")
    await accounts.remove("gone")
    for ended in (pw, role, gone):
        assert await sessions.is_live(ended.id) is None, ended.username
    assert await sessions.is_live((await sessions.create("pw", "password")).id) is not None  # new login
    await accounts.add("gone", "long-password-1", "operator")  # the same name again: old logins stay out
    assert await sessions.is_live(gone.id) is None


async def test_the_automatic_login_ends_with_the_first_account(db: Database) -> None:
    sessions = WebSessionRepository(db.sessionmaker)
    local = await sessions.create("local", AUTO_PROVIDER)
    assert await sessions.is_live(local.id) is not None
    await WebAccountRepository(db.sessionmaker).add("first", "long-password-1", "admin")
    assert await sessions.is_live(local.id) is None


async def test_idle_and_absolute_lifetimes(db: Database) -> None:
    await WebAccountRepository(db.sessionmaker).add("ann", "long-password-1", "operator")
    sessions = WebSessionRepository(db.sessionmaker, idle=timedelta(hours=1), lifetime=timedelta(days=1))
    used, idle = await sessions.create("ann", "password"), await sessions.create("ann", "password")

    async def last_seen(minutes_ago: float, *ids: uuid.UUID) -> None:
        async with db.sessionmaker() as session, session.begin():
            seen = datetime.now(UTC) - timedelta(minutes=minutes_ago)
            await session.execute(update(WebSession).where(WebSession.id.in_(ids)).values(last_seen_at=seen))

    await last_seen(59, used.id, idle.id)
    renewed = await sessions.is_live(used.id)  # a request now renews the idle timeout
    assert renewed is not None
    assert (await sessions.is_live(used.id)) is not None
    async with db.sessionmaker() as session:
        row = await session.get(WebSession, used.id)
    assert row is not None and datetime.now(UTC) - row.last_seen_at < TOUCH_RESOLUTION
    await last_seen(61, idle.id)
    assert await sessions.is_live(idle.id) is None  # an hour without a request

    short = WebSessionRepository(db.sessionmaker, lifetime=timedelta(seconds=-1))
    assert await short.is_live((await short.create("ann", "password")).id) is None  # past its lifetime


# --- kommandant users: the commands that end sessions ---------------------------------------------------


async def _cli(db: Database, tmp_path: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    env = {"KOMMANDANT_DATABASE_URL": db.url, "KOMMANDANT_DATA_DIR": str(tmp_path)}
    # The command runs its own event loop, so it gets a thread of its own.
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["users", *args], input=stdin, env=env)
    return result.exit_code, result.output


async def test_the_users_commands_end_sessions_and_say_why(db: Database, tmp_path: Path) -> None:
    sessions = WebSessionRepository(db.sessionmaker)
    local = await sessions.create("local", AUTO_PROVIDER)
    assert (await _cli(db, tmp_path, "add", "ann", "--password-stdin", stdin="long-password-1\n"))[0] == 0
    ann = await sessions.create("ann", "password")
    code, output = await _cli(db, tmp_path, "role", "ann", "viewer")
    assert code == 0 and "ann is now viewer." in output
    ann2 = await sessions.create("ann", "password")
    assert (await _cli(db, tmp_path, "logout", "--all"))[0] == 0
    async with db.sessionmaker() as session:
        why = {r.id: r.revoked_because for r in await session.scalars(select(WebSession))}
    assert why == {
        local.id: "an account exists: no more automatic login",
        ann.id: "role changed",
        ann2.id: "ended with kommandant users logout",
    }


async def test_the_users_commands_refuse_with_a_sentence(db: Database, tmp_path: Path) -> None:
    for args, said in (
        (("role", "nobody", "viewer"), "no account named 'nobody'"),
        (("role", "nobody", "root"), "'root' is not a role"),
        (("logout",), "Name one account, or give --all."),
        (("logout", "ann", "--all"), "Name one account, or give --all."),
    ):
        code, output = await _cli(db, tmp_path, *args)
        assert code != 0 and said in output and "Traceback" not in output, output


# --- the per-request check and its cache --------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def gate(db: Database, clock: _Clock) -> Callable[..., WebSessions]:
    def make(**overrides: object) -> WebSessions:
        options: dict[str, object] = {"check_seconds": 2.0, "auto_login": True, "clock": clock, **overrides}
        return WebSessions(WebSessionRepository(db.sessionmaker), SECRET, **options)  # type: ignore[arg-type]

    return make


async def test_a_session_ended_elsewhere_is_refused_once_the_cache_expires(
    db: Database, gate: Callable[..., WebSessions], clock: _Clock
) -> None:
    await WebAccountRepository(db.sessionmaker).add("ann", "long-password-1", "operator")
    here = gate()
    token = _token("ann", await here.start("ann", "password"))
    assert await here.check(token) is True
    await WebSessionRepository(db.sessionmaker).revoke_many("elsewhere", username="ann")  # the CLI
    clock.now += 1.9
    assert await here.check(token) is True  # trusted for check_seconds
    clock.now += 0.2
    assert await here.check(token) is False


async def test_logout_here_is_refused_at_once(db: Database, gate: Callable[..., WebSessions]) -> None:
    await WebAccountRepository(db.sessionmaker).add("ann", "long-password-1", "operator")
    here = gate()
    token = _token("ann", await here.start("ann", "password"))
    assert await here.alive(token)
    assert await here.end(token) is True
    assert await here.check(token) is False and not await here.alive(token)
    assert await here.end(token) is False


async def test_which_tokens_are_judged(db: Database, gate: Callable[..., WebSessions]) -> None:
    await WebAccountRepository(db.sessionmaker).add("ann", "long-password-1", "operator")
    here = gate()
    sid = await here.start("ann", "password")
    assert await here.check(_token("ben", sid)) is False  # another person's session id
    no_session = jwt.encode({"identifier": "ann", "metadata": {"role": "admin"}}, SECRET, algorithm="HS256")
    assert await here.check(no_session) is False  # a token from before sessions existed
    assert (
        await here.check(_token("ann", sid, secret="another-secret-also-long-enough-for-hs256")) is None
    )  # not ours
    expired = _token("ann", sid, exp=datetime.now(UTC) - timedelta(seconds=1))
    assert await here.check(expired) is None and await here.check("kmd_not-a-jwt") is None
    assert await here.check(None) is None


async def test_the_automatic_login_is_refused_when_the_server_asks_for_passwords(
    gate: Callable[..., WebSessions],
) -> None:
    auto = gate()
    token = _token("local", await auto.start("local", AUTO_PROVIDER))
    assert await auto.check(token) is True
    assert await gate(auto_login=False).check(token) is False


# --- the running server ----------------------------------------------------------------------------


def _client(web_server: WebServer, name: str, password: str, **options: object) -> httpx.Client:
    client = httpx.Client(**options)  # type: ignore[arg-type]
    response = client.post(f"{web_server.chat}/login", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return client


def _signed_in(client: httpx.Client, web_server: WebServer) -> bool:
    status = client.get(f"{web_server.chat}/user").status_code
    assert status in (200, 401), status
    return status == 200


def _ends_within(client: httpx.Client, web_server: WebServer, since: float) -> None:
    """Waits until the client's token is refused; fails if it still works ``ENDS_WITHIN`` seconds
    after ``since`` (a ``time.monotonic()`` taken when its session was ended)."""
    while _signed_in(client, web_server):
        assert time.monotonic() - since < ENDS_WITHIN, f"the token still works after {ENDS_WITHIN} s"
        time.sleep(0.2)


@pytest.fixture
def account(web_server: WebServer) -> Iterator[tuple[str, str]]:
    """A fresh operator account on the server (removed afterwards if still there)."""
    name, password = f"ses-{uuid.uuid4().hex[:8]}", "session-password-1"
    run_async(web_server.add_account(name, password, "operator"))
    yield name, password
    run_async(_remove(web_server, name))


async def _remove(web_server: WebServer, name: str) -> None:
    async with Database(web_server.database_url, migrate=False) as db:
        accounts = WebAccountRepository(db.sessionmaker)
        if await accounts.get(name) is not None:
            await accounts.remove(name)


def _users(web_server: WebServer, tmp_path: Path, *args: str, stdin: str | None = None) -> str:
    """``kommandant users …`` on the server's database, as an administrator would run it."""
    env = {"KOMMANDANT_DATABASE_URL": web_server.database_url, "KOMMANDANT_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli_app, ["users", *args], input=stdin, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_token_stops_working_at_logout(web_server: WebServer, account: tuple[str, str]) -> None:
    client = _client(web_server, *account)
    token = client.cookies["access_token"]
    assert _signed_in(client, web_server)
    assert client.post(f"{web_server.chat}/logout").status_code == 200
    stolen = httpx.Client(cookies={"access_token": token})  # a copy kept by someone else
    refused = stolen.get(f"{web_server.chat}/user")  # ended in this process: at once
    assert refused.status_code == 401
    dropped = refused.headers.get("set-cookie", "")  # the browser is told to forget the cookie
    assert dropped.startswith("access_token=;") and "Max-Age=0" in dropped
    bearer = httpx.get(f"{web_server.chat}/user", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401
    assert _client(web_server, *account).get(f"{web_server.chat}/user").status_code == 200  # sign in again


@pytest.mark.parametrize(
    ("command", "stdin"),
    [
        (("remove", "{name}"), None),
        (("passwd", "{name}", "--password-stdin"), "a-new-password-2\n"),
        (("role", "{name}", "viewer"), None),
        (("logout", "{name}"), None),
    ],
    ids=["users-remove", "users-passwd", "role-change", "users-logout"],
)
def test_a_token_stops_working_after_an_account_change(
    web_server: WebServer,
    account: tuple[str, str],
    tmp_path: Path,
    command: tuple[str, ...],
    stdin: str | None,
) -> None:
    name, password = account
    client, other = _client(web_server, name, password), _client(web_server, name, password)
    assert _signed_in(client, web_server) and _signed_in(other, web_server)
    _users(web_server, tmp_path, *(part.format(name=name) for part in command), stdin=stdin)
    ended = time.monotonic()
    _ends_within(client, web_server, since=ended)
    _ends_within(other, web_server, since=ended)  # every session of that person
    if command[0] == "passwd":
        assert _signed_in(_client(web_server, name, "a-new-password-2"), web_server)
    rows = run_async(_audit_rows(web_server, name))
    assert rows and rows[-1]["sessions_ended"] == "2"


async def _audit_rows(web_server: WebServer, name: str) -> list[dict[str, object]]:
    async with Database(web_server.database_url, migrate=False) as db, db.sessionmaker() as session:
        rows = (await session.scalars(select(AuditRow).where(AuditRow.channel == "cli"))).all()
        return [dict(r.data) for r in rows if r.data.get("username") == name]


def test_the_local_admin_token_stops_working_when_the_first_account_is_created(
    web_server: WebServer,
    no_accounts: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    local = httpx.Client()
    assert local.post(f"{web_server.chat}/auth/header").status_code == 200  # signed in automatically
    assert _signed_in(local, web_server)
    name = f"first-{uuid.uuid4().hex[:6]}"
    try:
        _users(
            web_server, tmp_path, "add", name, "--role", "admin", "--password-stdin", stdin="first-pw-123\n"
        )
        _ends_within(local, web_server, since=time.monotonic())
        assert local.post(f"{web_server.chat}/auth/header").status_code == 401  # and no new one
    finally:
        run_async(_remove(web_server, name))


async def test_an_open_chat_socket_is_closed_and_refused_after_logout(
    web_server: WebServer, account: tuple[str, str]
) -> None:
    name, password = account
    async with httpx.AsyncClient() as client:
        login = await client.post(f"{web_server.chat}/login", data={"username": name, "password": password})
        assert login.status_code == 200
        cookie = f"access_token={client.cookies['access_token']}"
        async with _socket(web_server, cookie) as ws:
            assert await _connect(ws) == "40"  # Socket.IO accepts the login
            assert (await client.post(f"{web_server.chat}/logout")).status_code == 200
            started = time.monotonic()
            while (packet := str(await asyncio.wait_for(ws.recv(), timeout=ENDS_WITHIN))) != "41":
                assert packet.startswith(("2", "42")), packet  # pings and chat events until then
            assert time.monotonic() - started < ENDS_WITHIN  # the open socket was disconnected
    async with _socket(web_server, cookie) as ws:
        assert await _connect(ws) == "44"  # connect_error: its reconnect is refused


def _socket(web_server: WebServer, cookie: str) -> Any:
    import websockets

    url = f"ws://127.0.0.1:{web_server.settings.port}/chat/ws/socket.io/?EIO=4&transport=websocket"
    return websockets.connect(url, origin=web_server.url, additional_headers={"Cookie": cookie})  # type: ignore[arg-type]


async def _connect(ws: Any) -> str:
    """The type of Socket.IO's answer to a connect on ``ws``: ``40`` accepted, ``44`` refused."""
    assert str(await ws.recv()).startswith("0")  # Engine.IO's open packet
    auth = {"sessionId": str(uuid.uuid4()), "clientType": "webapp", "userEnv": "{}"}
    await ws.send("40" + json.dumps(auth))
    return str(await asyncio.wait_for(ws.recv(), timeout=10))[:2]


# --- Secure cookies ----------------------------------------------------------------------------------


def _login_cookie(web_server: WebServer, account: tuple[str, str], *, proxy: bool, proto: str) -> str:
    transport = httpx.HTTPTransport(local_address=TRUSTED_PROXY if proxy else "127.0.0.1")
    with httpx.Client(transport=transport, headers={"X-Forwarded-Proto": proto}) as client:
        name, password = account
        response = client.post(f"{web_server.chat}/login", data={"username": name, "password": password})
        assert response.status_code == 200, response.text
        return response.headers["set-cookie"]


def test_the_cookie_is_secure_behind_a_trusted_https_proxy_only(
    web_server: WebServer, account: tuple[str, str]
) -> None:
    def attributes(cookie: str) -> list[str]:
        return [part.strip().lower() for part in cookie.split(";")]

    trusted = _login_cookie(web_server, account, proxy=True, proto="https")
    assert trusted.startswith("access_token=") and "secure" in attributes(trusted)
    assert "httponly" in attributes(trusted)
    assert "secure" not in attributes(_login_cookie(web_server, account, proxy=True, proto="http"))
    untrusted = _login_cookie(web_server, account, proxy=False, proto="https")  # any client can say so
    assert "secure" not in attributes(untrusted)
    lifetime = int(next(a for a in attributes(trusted) if a.startswith("max-age=")).split("=")[1])
    assert lifetime == int(timedelta(days=web_server.settings.web_session_max_days).total_seconds())


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings(_env_file=None, trusted_proxies="10.0.0.5, 172.18.0.0/16,::1")
    assert settings.trusted_proxies == ["10.0.0.5", "172.18.0.0/16", "::1"]
    assert Settings(_env_file=None).trusted_proxies == []
    for bad in ("*", "proxy.example.org", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="not an IP address or network"):
            Settings(_env_file=None, trusted_proxies=bad)
