"""The web server of ``kommandant up``: one FastAPI app with the chat mounted, run by uvicorn.

Chainlit keeps its hooks and settings in module globals, so a process serves one chat app; its hooks
(``assistant/app.py``) reach the running services through ``runtime()``, ``web_auth()`` and
``chat_history()`` here, which the app's lifespan sets.

Every request passes the Host and Origin check first (``assistant.web.hosts``), then one CORS layer
(``KOMMANDANT_CORS_ORIGINS``; same origin only by default) for all routes, the chat's included. Every
response carries the Content-Security-Policy (``assistant.web.csp``): pages load from this server only.
Right after the Host check, ``X-Forwarded-*`` headers are believed from ``KOMMANDANT_TRUSTED_PROXIES``
only, a login token whose session ended is taken out of the request (``assistant.web.sessions``;
``web_sessions()``), and password logins are throttled (``assistant.web.login``).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # at module level: FastAPI reads the route's annotations here

from settings import WILDCARD_HOSTS, Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from assistant.kommandant import Kommandant
    from assistant.runtime import Runtime
    from assistant.web.auth import WebAuth
    from assistant.web.csp import ContentPolicy
    from assistant.web.history import KommandantDataLayer
    from assistant.web.login import LoginGuard
    from assistant.web.sessions import WebSessions
    from assistant.web.shutdown import TurnGate

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHAT_PATH = "/chat"
OAUTH_FORM_POST_CALLBACK = f"{CHAT_PATH}/auth/oauth/azure-ad-hybrid/callback"
"""Chainlit's one sign-in route that the provider's page posts to (from its own origin)."""
STARTUP_FAILURE = 3
"""Exit status when the server did not start (uvicorn's own)."""
SOCKET_MAX_BYTES = 8 * 1024 * 1024
"""Largest Socket.IO message; above Engine.IO's 1 MB default so an over-long chat message reaches the
Kommandant and gets a clear reply instead of a silently dropped connection."""

_runtime: Runtime | None = None
_auth: WebAuth | None = None
_history: KommandantDataLayer | None = None
_sessions: WebSessions | None = None
_logins: LoginGuard | None = None
_turns: TurnGate | None = None


def runtime() -> Runtime:
    """The services of this web process, for Chainlit's module-level hooks (set by the app's lifespan)."""
    if _runtime is None:
        raise RuntimeError("Kommandant is still starting")
    return _runtime


def kommandant() -> Kommandant:
    """The Kommandant of this web process."""
    rt = runtime()
    assert rt.kommandant is not None
    return rt.kommandant


def web_sessions() -> WebSessions:
    """Login sessions of this web process (set by the app's lifespan)."""
    if _sessions is None:
        raise RuntimeError("Kommandant is still starting")
    return _sessions


def turn_gate() -> TurnGate:
    """The chat turns under way in this process (set by the app's lifespan; closed when it stops)."""
    if _turns is None:
        raise RuntimeError("Kommandant is still starting")
    return _turns


def web_auth() -> WebAuth:
    """Login decisions of this web process (set by the app's lifespan)."""
    if _auth is None:
        raise RuntimeError("Kommandant is still starting")
    return _auth


def chat_history() -> KommandantDataLayer:
    """The one Chainlit data layer of this process; bound to the database while the runtime is open.

    Chainlit asks for it once and caches it, so it is created once and re-bound on every start.
    """
    global _history
    if _history is None:
        from assistant.web.history import KommandantDataLayer

        _history = KommandantDataLayer()
    return _history


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app: health check, the chat under ``/chat``; the runtime opens in its lifespan."""
    os.environ.setdefault("CHAINLIT_APP_ROOT", str(PROJECT_ROOT))
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse
    from starlette.middleware.cors import CORSMiddleware
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from assistant.runtime import Runtime
    from assistant.web.auth import WebAuth, ensure_auth_secret
    from assistant.web.csp import ContentPolicyMiddleware
    from assistant.web.hosts import HostCheckMiddleware, HostPolicy
    from assistant.web.login import LoginThrottleMiddleware
    from assistant.web.sessions import (
        SessionMiddleware,
        close_ended_sockets,
        open_sessions,
        session_lifetime,
    )
    from assistant.web.shutdown import TurnGate
    from storage.web_accounts import WebAccountRepository

    auth_secret = ensure_auth_secret(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        global _runtime, _auth, _sessions, _logins, _turns
        async with Runtime(settings, warm_embeddings=True, scheduler=True) as rt:
            assert rt.services is not None
            database = rt.services.database
            chat_history().bind(database)
            _auth = WebAuth(settings, WebAccountRepository(database.sessionmaker))
            _sessions, _logins = open_sessions(settings, database.sessionmaker, auth_secret)
            sweep = asyncio.create_task(close_ended_sockets(_sessions), name="close-ended-sockets")
            _turns = TurnGate()
            _runtime = rt
            shown = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host  # 0.0.0.0 is no name
            log.info("Kommandant is ready at http://%s:%s%s", shown, settings.port, CHAT_PATH)
            try:
                yield
            finally:
                await chat_history().flush()  # thread writes still waiting (see chat_history)
                sweep.cancel()
                _runtime = None
                _auth = None
                _sessions = _logins = None

    # No Swagger UI / ReDoc pages: FastAPI's default ones load their scripts from a CDN (a blank page
    # offline, and refused by our Content-Security-Policy anyway).
    app = FastAPI(title="Kommandant", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok" if _runtime is not None else "starting"}

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse(CHAT_PATH)

    @app.get(f"{CHAT_PATH}/auth/config", include_in_schema=False)
    async def auth_config(request: Request) -> dict[str, Any]:
        """Chainlit's login configuration, with the header login offered only when it can succeed
        (auto-login of the local admin for a local request, or a trusted proxy header): else the page
        would try it on every visit and greet people with a failed sign-in."""
        from chainlit.auth import get_configuration

        configuration: dict[str, Any] = get_configuration()
        offered = bool(settings.web_auth_header) or (
            _auth is not None and _auth.local_request(request.headers) and await _auth.auto_login_active()
        )
        configuration["headerAuth"] = offered
        return configuration

    # --- MCP over streamable HTTP at /mcp (issue 8; bearer tokens, runs on this process's runtime) ---
    from mcp_server.http import mount as mount_mcp

    mount_mcp(app, settings, runtime)
    # --- end MCP ---

    # --- control panel: /api, /api/events, /metrics, /dashboard (issue 19) ---
    from assistant.web.metrics import mount_metrics
    from assistant.web.panel import mount_control_panel

    mount_metrics(app, settings, runtime)
    mount_control_panel(app, settings, runtime, sessions=lambda: _sessions, web_auth=lambda: _auth)
    # --- end control panel ---

    # --- connectors: /slack/events, /hooks/{name} (issue 20) ---
    from connectors.web import mount as mount_connectors

    mount_connectors(app, settings, runtime)  # the connector registry starts in the lifespan
    # --- end connectors ---

    from chainlit.server import app as chainlit_app
    from chainlit.server import sio
    from chainlit.utils import mount_chainlit

    from assistant.web.feedback import feedback_routes
    from mcp_server.http import MCP_PATH, transport_security

    sio.eio.max_http_buffer_size = SOCKET_MAX_BYTES
    keep_uploads_in(settings.data_dir / "files")
    app.include_router(feedback_routes(CHAT_PATH, chat_history))  # before the chat's own routes
    mount_chainlit(app, target=str(Path(__file__).with_name("app.py")), path=CHAT_PATH)
    drop_chainlit_cors(chainlit_app, settings.cors_origins)
    session_lifetime(settings)
    app.add_middleware(OfflinePageMiddleware)
    app.add_middleware(ContentPolicyMiddleware, policy=chat_page_policy())
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    web, mcp = HostPolicy.for_web(settings), transport_security(settings)
    app.add_middleware(LoginThrottleMiddleware, path=f"{CHAT_PATH}/login", guard=lambda: _logins)
    app.add_middleware(SessionMiddleware, sessions=lambda: _sessions)
    # X-Forwarded-Proto/-For believed from the configured proxies only (uvicorn's own layer is off: serve)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(  # last added, so it runs first: before every route, the mounted chat included
        HostCheckMiddleware,
        policy=web,
        routes=[
            (MCP_PATH, HostPolicy.create(mcp.allowed_hosts, mcp.allowed_origins)),
            (OAUTH_FORM_POST_CALLBACK, replace(web, any_origin=True)),
        ],
    )
    return app


def chat_page_policy() -> ContentPolicy:
    """The Content-Security-Policy for every page: the chat page as it is served now (Chainlit's template,
    without remote links) gives the hashes of the inline scripts it may run."""
    from chainlit.server import get_html_template

    from assistant.web.csp import ContentPolicy

    return ContentPolicy.for_page(strip_remote_links(get_html_template(CHAT_PATH)))


def keep_uploads_in(folder: Path) -> None:
    """Have Chainlit keep uploaded files in ``folder`` (the data folder's ``files``, private to this
    user) instead of ``.files`` in the checkout. Chainlit reads ``FILES_DIRECTORY`` from its config
    module each time a session stores a file; its server module keeps a copy for its shutdown clean-up."""
    import chainlit.config
    import chainlit.server

    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    chainlit.config.FILES_DIRECTORY = folder
    chainlit.server.FILES_DIRECTORY = folder


def drop_chainlit_cors(chainlit_app: Starlette, origins: list[str]) -> None:
    """Leave CORS to the outer app, whose layer covers every route with ``KOMMANDANT_CORS_ORIGINS``.

    Chainlit adds a CORS middleware of its own at import, from ``allow_origins`` in
    ``.chainlit/config.toml``; two layers could answer differently, so Chainlit's is removed (its
    setting is kept equal to ours for any code that reads it). Before the app first served a request
    only: after that Chainlit's layer stays, and config.toml's empty list keeps it from allowing any
    origin.
    """
    from chainlit.config import config
    from starlette.middleware.cors import CORSMiddleware

    config.project.allow_origins = list(origins)
    if chainlit_app.middleware_stack is None:
        chainlit_app.user_middleware = [
            m for m in chainlit_app.user_middleware if m.cls is not CORSMiddleware
        ]


_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)


def strip_remote_links(html: str) -> str:
    """The page without ``<link>`` tags that load from the internet (Google Fonts, KaTeX from a CDN):
    the chat must work in a closed network, and the bundled CSS falls back to the system font."""
    return _REMOTE_LINK.sub("", html)


class OfflinePageMiddleware:
    """Rewrites Chainlit's HTML page (served for every front-end route) so it loads nothing remote."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if not content_type.startswith(b"text/html"):
                    await send(message)
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if dict(start.get("headers", [])).get(b"content-encoding") == b"gzip":
                body = gzip.decompress(body)  # Chainlit's GZip middleware ran first; the page is small
            body = strip_remote_links(body.decode("utf-8")).encode("utf-8")
            dropped = (b"content-length", b"content-encoding")
            headers = [(k, v) for k, v in start.get("headers", []) if k not in dropped]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def serve(settings: Settings) -> None:
    """Run the web server until Ctrl-C or SIGTERM: it stops listening, finishes the chat turns under way
    (up to ``worker_stop_grace`` s, see ``assistant.web.shutdown``), then the lifespan stops agents and
    the database cleanly."""
    import uvicorn

    from assistant.web.shutdown import DrainingServer

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        proxy_headers=False,  # create_app trusts KOMMANDANT_TRUSTED_PROXIES only, not 127.0.0.1
        # After the chat turns (DrainingServer), HTTP requests under way (MCP calls, /api/turns) get the
        # same grace; an open event stream (/api/events) must not hold the shutdown for ever.
        timeout_graceful_shutdown=max(1, round(settings.worker_stop_grace)),
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,  # json: ours
    )
    server = DrainingServer(config, gate=lambda: _turns, grace=settings.worker_stop_grace)
    try:
        server.run()
    finally:
        server.returned.set()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
