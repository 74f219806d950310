"""The control panel: the ``/api`` routes, the live event stream, the dashboard and the offline API docs,
mounted in the web server of ``kommandant up`` (issue 19). ``docs/control-panel.md`` describes them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from assistant.web.panel.api import Panel, build_router
from assistant.web.panel.auth import PanelAuth, Principal, Tickets
from assistant.web.panel.events import EventHub, Recorder

if TYPE_CHECKING:
    from fastapi import FastAPI

    from assistant.runtime import Runtime
    from assistant.web.auth import WebAuth
    from assistant.web.sessions import WebSessions
    from settings import Settings

__all__ = ["Panel", "Principal", "mount_control_panel"]

OPENAPI_PATH = "/api/openapi.json"


def mount_control_panel(
    app: FastAPI,
    settings: Settings,
    runtime: Callable[[], Runtime],
    *,
    sessions: Callable[[], WebSessions | None] = lambda: None,
    web_auth: Callable[[], WebAuth | None] = lambda: None,
    ping: float = 15.0,
    poll: float = 0.25,
) -> Callable[[], Panel]:
    """Add ``/api/...``, ``/api/openapi.json``, ``/api/docs`` and ``/dashboard`` to ``app``; the panel
    starts (event hub, bus recorder) once ``app``'s own lifespan has opened the runtime. ``sessions`` and
    ``web_auth``: the web login, for the dashboard's cookie. Returns the running panel's getter."""
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import JSONResponse

    from assistant.web.auth import ensure_auth_secret
    from assistant.web.panel.dashboard import page_routes
    from storage.events import EventLog
    from storage.tokens import TokenRepository

    holder: list[Panel] = []

    def panel() -> Panel:
        if not holder:
            raise RuntimeError("the control panel is still starting")
        return holder[0]

    def tokens() -> TokenRepository:
        services = runtime().services
        assert services is not None
        return TokenRepository(services.database.sessionmaker)

    tickets = Tickets(ensure_auth_secret(settings))
    router = build_router(panel)
    pages, mounts = page_routes()
    spec: dict[str, Any] = {}

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        if not spec:
            spec.update(
                get_openapi(
                    title="Kommandant control panel",
                    version="1",
                    description="Bearer token (kommandant tokens create) or the web login cookie.",
                    routes=router.routes,
                )
            )
            spec.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            spec["security"] = [{"bearer": []}]
        return JSONResponse(spec)

    app.include_router(router)
    app.include_router(pages)
    app.router.routes.extend(mounts)
    hosted = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        async with hosted(target) as state:
            services = runtime().services
            assert services is not None
            events = EventLog(services.database.sessionmaker)
            hub = EventHub(events, poll=poll)
            recorder = Recorder(services.bus, events, heartbeat_interval=settings.heartbeat_interval)
            await hub.start()
            await recorder.start()
            auth = PanelAuth(
                tokens, sessions, web_auth, tickets, trust_seconds=settings.web_session_check_seconds
            )
            holder.append(Panel(runtime, auth, hub, ping=ping))
            try:
                yield state
            finally:
                holder.clear()
                await recorder.stop()
                await hub.stop()

    app.router.lifespan_context = lifespan
    return panel
