"""Web logins that end: the login token names a session that is checked on every request.

Chainlit issues the login token (a JWT in the ``access_token`` cookie, or a bearer header) from the
user our login callbacks return; its metadata carries the session id (``session``). Before the chat
sees a request, ``SessionMiddleware`` looks the session up (``storage.web_sessions``): a token whose
session has ended is taken out of the request, so the chat treats it as no login at all (its API
answers 401, its socket refuses to connect, the page shows the login form), and the browser is told to
drop the cookie. Each answer is trusted for ``KOMMANDANT_WEB_SESSION_CHECK_SECONDS``: a logout here
takes effect at once, one made elsewhere (the CLI, another replica) within those seconds.

The middleware also marks every cookie ``Secure`` on a request that arrived over HTTPS: directly, or
through a proxy listed in ``KOMMANDANT_TRUSTED_PROXIES`` that said ``X-Forwarded-Proto: https``
(uvicorn's proxy-headers layer, configured with that list only, sets the request's scheme).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.web.login import LoginGuard
from settings import Settings
from storage.audit import AuditLog
from storage.login_attempts import LoginAttemptRepository
from storage.web_accounts import WebAccountRepository
from storage.web_sessions import AUTO_PROVIDER, WebSessionRepository, parse_session_id

log = logging.getLogger(__name__)

SESSION_CLAIM = "session"
"""The key of the session id in the login token's user metadata."""
AUTH_COOKIE = "access_token"
"""Chainlit's login cookie (``CHAINLIT_AUTH_COOKIE_NAME``); a long token is split into ``access_token_0``…"""
JWT_ALGORITHMS = ["HS256"]
"""What Chainlit signs its tokens with."""
CACHE_LIMIT = 10_000
SWEEP_SECONDS = 1.0
"""How often open chat sockets are checked (each check is answered from the cache most of the time)."""


@dataclass(frozen=True, slots=True)
class _Seen:
    alive: bool
    until: float


class WebSessions:
    """Starts, checks (with a short cache) and ends the login sessions of one web process."""

    def __init__(
        self,
        repository: WebSessionRepository,
        secret: str,
        *,
        check_seconds: float,
        auto_login: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self._secret = secret
        self.check_seconds = check_seconds
        self.auto_login = auto_login
        """Whether this server signs in the local admin without an account (``KOMMANDANT_WEB_AUTH=auto``):
        when it does not, sessions of that login are refused even while no account exists."""
        self._clock = clock
        self._seen: dict[uuid.UUID, _Seen] = {}

    async def start(self, user: str, provider: str) -> str:
        """A new session for a person who just signed in; its id goes into the login token."""
        record = await self.repository.create(user, provider)
        return str(record.id)

    def claims(self, token: str | None) -> dict[str, Any] | None:
        """The claims of a valid, unexpired login token signed with our secret; else None."""
        if not token:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(token, self._secret, algorithms=JWT_ALGORITHMS)
        except jwt.InvalidTokenError:
            return None
        return claims

    async def check(self, token: str | None) -> bool | None:
        """True for a token of a live session; False for a token of ours whose session ended (or that
        names none: issued before sessions existed); None for anything else (not a valid token of ours:
        Chainlit refuses it on its own)."""
        claims = self.claims(token)
        if claims is None:
            return None
        sid = _session_id(claims)
        if sid is None:
            return False
        return await self._alive(sid, str(claims.get("identifier", "")))

    async def alive(self, token: str | None) -> bool:
        """Whether ``token`` belongs to a live session (for a chat socket opened before a logout)."""
        return bool(await self.check(token))

    async def end(self, token: str | None, because: str = "logout") -> bool:
        """End the session of ``token`` (logout): refused from now on in this process, and within
        ``check_seconds`` in every other one. False when the token names no live session."""
        claims = self.claims(token)
        sid = None if claims is None else _session_id(claims)
        if sid is None:
            return False
        self._remember(sid, False)
        return await self.repository.revoke(sid, because)

    async def _alive(self, sid: uuid.UUID, user: str) -> bool:
        seen = self._seen.get(sid)
        if seen is not None and seen.until > self._clock():
            return seen.alive
        record = await self.repository.is_live(sid)
        alive = (
            record is not None
            and record.username == user
            and (record.provider != AUTO_PROVIDER or self.auto_login)
        )
        self._remember(sid, alive)
        return alive

    def _remember(self, sid: uuid.UUID, alive: bool) -> None:
        now = self._clock()
        if len(self._seen) >= CACHE_LIMIT:
            self._seen = {k: v for k, v in self._seen.items() if v.until > now}
        # An ended session never comes back: remember that for as long as the cache may hold anything.
        self._seen[sid] = _Seen(
            alive, now + self.check_seconds if alive else now + max(self.check_seconds, 60)
        )


def _session_id(claims: dict[str, Any]) -> uuid.UUID | None:
    metadata = claims.get("metadata")
    return parse_session_id(metadata.get(SESSION_CLAIM) if isinstance(metadata, dict) else None)


def socket_token(session: Any) -> str | None:
    """The login token of a Chainlit chat socket session: the cookie of its latest connection (a
    reconnect after signing in again brings a new one), else the token it first connected with."""
    environ = getattr(session, "environ", None) or {}
    return token_from_cookies(environ.get("HTTP_COOKIE", "")) or getattr(session, "token", None)


async def close_ended_sockets(sessions: WebSessions, interval: float = SWEEP_SECONDS) -> None:
    """Every ``interval`` seconds, disconnect the open chat sockets whose login ended (a logout, an
    account change, here or in another process): an open socket sends no new HTTP request the
    middleware could refuse. The page's reconnect then fails like any other request without a login."""
    from chainlit.server import sio
    from chainlit.session import ws_sessions_sid

    while True:
        await asyncio.sleep(interval)
        try:
            for socket_id, session in list(ws_sessions_sid.items()):
                # Chainlit keeps a closed socket's session a while for a reconnect: only open ones count.
                if not sio.manager.is_connected(socket_id, "/"):
                    continue
                if await sessions.check(socket_token(session)) is False:
                    user = getattr(session.user, "identifier", "?")
                    log.info("closing the chat socket of %s: its login ended", user)
                    await sio.disconnect(socket_id)
        except Exception:  # the database may be away for a moment: keep sweeping, say why
            log.exception("could not check the open chat sockets' logins; trying again")


def _is_auth_cookie(name: str) -> bool:
    return name == AUTH_COOKIE or (
        name.startswith(AUTH_COOKIE + "_") and name[len(AUTH_COOKIE) + 1 :].isdigit()
    )


def _cookie_pairs(header: str) -> list[tuple[str, str]]:
    pairs = []
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            pairs.append((name.strip(), value.strip()))
    return pairs


def token_from_cookies(header: str) -> str | None:
    """The login token in a ``Cookie`` header: the whole cookie, else its numbered chunks joined
    (Chainlit splits tokens longer than 3,000 characters)."""
    cookies = dict(_cookie_pairs(header))
    if cookies.get(AUTH_COOKIE):
        return cookies[AUTH_COOKIE]
    chunks: list[str] = []
    while f"{AUTH_COOKIE}_{len(chunks)}" in cookies:
        chunks.append(cookies[f"{AUTH_COOKIE}_{len(chunks)}"])
    return "".join(chunks) or None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def request_token(headers: Mapping[str, str]) -> str | None:
    """The login token a request carries: Chainlit's cookie first, else a bearer header (its order)."""
    return token_from_cookies(headers.get("cookie", "")) or bearer_token(headers.get("authorization"))


class SessionMiddleware:
    """Takes login tokens of ended sessions out of every request (HTTP and WebSocket) before the chat
    sees them, and marks cookies ``Secure`` on HTTPS. ``sessions`` returns None while the server is
    not running: every token is then treated as ended."""

    def __init__(self, app: ASGIApp, sessions: Callable[[], WebSessions | None]) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookie_token = token_from_cookies(headers.get("cookie", ""))
        header_token = bearer_token(headers.get("authorization"))
        drop_cookie = cookie_token is not None and await self._ended(cookie_token)
        drop_header = header_token is not None and await self._ended(header_token)
        if drop_cookie or drop_header:
            scope = _without_tokens(scope, cookie=drop_cookie, authorization=drop_header)
        secure = scope.get("scheme") in ("https", "wss")
        if scope["type"] == "http" and (secure or drop_cookie):
            send = _cookie_rewriter(send, secure=secure, expire_login=drop_cookie)
        await self.app(scope, receive, send)

    async def _ended(self, token: str) -> bool:
        sessions = self.sessions()
        if sessions is None:
            return True
        return await sessions.check(token) is False


def _without_tokens(scope: Scope, *, cookie: bool, authorization: bool) -> Scope:
    kept: list[tuple[bytes, bytes]] = []
    for name, value in scope["headers"]:
        if authorization and name == b"authorization":
            continue
        if cookie and name == b"cookie":
            others = [f"{k}={v}" for k, v in _cookie_pairs(value.decode("latin-1")) if not _is_auth_cookie(k)]
            if not others:
                continue
            value = "; ".join(others).encode("latin-1")
        kept.append((name, value))
    return {**scope, "headers": kept}


def _cookie_rewriter(send: Send, *, secure: bool, expire_login: bool) -> Send:
    """``send`` with every cookie made ``Secure`` (on HTTPS) and, for a request whose login ended, the
    login cookie expired unless the response sets a new one (a fresh sign-in)."""

    async def rewrite(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            headers = MutableHeaders(scope=message)
            cookies = headers.getlist("set-cookie")
            if expire_login and not any(_is_auth_cookie(c.partition("=")[0].strip()) for c in cookies):
                cookies.append(f"{AUTH_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=lax")
            if secure:
                cookies = [
                    c if "secure" in c.lower().replace(" ", "").split(";") else f"{c}; Secure"
                    for c in cookies
                ]
            del headers["set-cookie"]
            for cookie in cookies:
                headers.append("set-cookie", cookie)
        await send(message)

    return rewrite


def open_sessions(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], secret: str
) -> tuple[WebSessions, LoginGuard]:
    """The login sessions and the login throttle of a web process, on its database."""
    repository = WebSessionRepository(
        sessionmaker,
        idle=timedelta(hours=settings.web_session_idle_hours),
        lifetime=timedelta(days=settings.web_session_max_days),
    )
    sessions = WebSessions(
        repository,
        secret,
        check_seconds=settings.web_session_check_seconds,
        auto_login=settings.web_auth == "auto",
    )
    guard = LoginGuard(
        LoginAttemptRepository(sessionmaker), AuditLog(sessionmaker), WebAccountRepository(sessionmaker)
    )
    return sessions, guard


def session_lifetime(settings: Settings) -> None:
    """Have Chainlit's login token and cookie last as long as a session may (``web_session_max_days``)
    instead of its 15 days; the idle timeout is kept by the session itself."""
    from chainlit.config import config

    config.project.user_session_timeout = int(timedelta(days=settings.web_session_max_days).total_seconds())
