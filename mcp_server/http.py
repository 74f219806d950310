"""The streamable-HTTP transport: bearer tokens, DNS-rebinding protection, and the ``/mcp`` endpoint both
in ``kommandant mcp --http`` and inside the web server of ``kommandant up``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.fastmcp.server import StreamableHTTPASGIApp
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp

from mcp_server.auth import DatabaseTokenVerifier
from mcp_server.server import KommandantMCP
from settings import LOCAL_HOSTS, Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from assistant.runtime import Runtime

log = logging.getLogger(__name__)
MCP_PATH = "/mcp"


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Accept only Host and Origin headers naming this machine (or configured names): a web page on
    another site that rebinds its DNS name to 127.0.0.1 cannot reach the endpoint. The web server's
    hosts and CORS origins (``KOMMANDANT_ALLOWED_HOSTS``, ``KOMMANDANT_CORS_ORIGINS``) count here too;
    the web server's own Host check applies this same policy to ``/mcp``."""
    hosts = {
        *settings.allowed_host_patterns,
        *(form for h in settings.mcp_allowed_hosts for form in (h, f"{h}:*")),
    }
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(hosts),
        allowed_origins=sorted(
            {*(f"{scheme}://{h}:*" for h in LOCAL_HOSTS for scheme in ("http", "https")),
             *(f"http://{h}" for h in LOCAL_HOSTS), *settings.mcp_allowed_origins, *settings.cors_origins}
        ),
    )  # fmt: skip


def endpoint(
    runtime: Callable[[], Runtime], settings: Settings
) -> tuple[ASGIApp, Callable[[], AbstractAsyncContextManager[None]]]:
    """The ``/mcp`` ASGI app (bearer token required, 401 otherwise) and its lifecycle (the session
    manager, the watch for attached MCP servers), which the hosting app's lifespan must enter."""
    server = KommandantMCP(runtime, local=None)
    manager = StreamableHTTPSessionManager(
        app=server._mcp_server, security_settings=transport_security(settings)
    )
    protected = RequireAuthMiddleware(StreamableHTTPASGIApp(manager), required_scopes=[])
    app = AuthenticationMiddleware(
        AuthContextMiddleware(protected), backend=BearerAuthBackend(DatabaseTokenVerifier(runtime))
    )

    @asynccontextmanager
    async def lifecycle() -> AsyncIterator[None]:
        async with manager.run(), server.watching():
            yield

    return app, lifecycle


def mount(app: Starlette, settings: Settings, runtime: Callable[[], Runtime]) -> None:
    """Serve MCP at ``/mcp`` in the web server of ``kommandant up``, on the web process's runtime."""
    asgi, lifecycle = endpoint(runtime, settings)
    app.router.routes.append(Route(MCP_PATH, endpoint=asgi))
    hosted = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        async with hosted(target) as state, lifecycle():
            yield state

    app.router.lifespan_context = lifespan


def create_app(settings: Settings) -> Starlette:
    """The standalone MCP HTTP server of ``kommandant mcp --http``: ``/mcp`` and ``/healthz``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from assistant.runtime import Runtime

    holder: list[Runtime] = []

    def runtime() -> Runtime:
        if not holder:
            raise RuntimeError("Kommandant is still starting")
        return holder[0]

    asgi, lifecycle = endpoint(runtime, settings)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok" if holder else "starting"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with Runtime(settings, warm_embeddings=True) as rt, lifecycle():
            holder.append(rt)
            try:
                yield
            finally:
                holder.clear()

    return Starlette(routes=[Route(MCP_PATH, endpoint=asgi), Route("/healthz", healthz)], lifespan=lifespan)


def serve(settings: Settings) -> None:
    """Run ``kommandant mcp --http`` until Ctrl-C."""
    import uvicorn

    log.info("MCP over streamable HTTP at http://%s:%s%s", settings.host, settings.port, MCP_PATH)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            lifespan="on",
        )
