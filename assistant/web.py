"""The web server of ``kommandant up``: one FastAPI app with the chat mounted, run by uvicorn."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from assistant.runtime import Runtime

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHAT_PATH = "/chat"
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The services of this web process, for Chainlit's module-level hooks (set by the app's lifespan)."""
    if _runtime is None:
        raise RuntimeError("Kommandant is still starting")
    return _runtime


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app: health check, the chat under ``/chat``; the runtime opens in its lifespan."""
    os.environ.setdefault("CHAINLIT_APP_ROOT", str(PROJECT_ROOT))
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from assistant.runtime import Runtime

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        global _runtime
        async with Runtime(settings) as rt:
            _runtime = rt
            log.info("Kommandant is ready at http://%s:%s%s", settings.host, settings.port, CHAT_PATH)
            try:
                yield
            finally:
                _runtime = None

    app = FastAPI(title="Kommandant", lifespan=lifespan)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok" if _runtime is not None else "starting"}

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse(CHAT_PATH)

    from chainlit.utils import mount_chainlit

    mount_chainlit(app, target=str(PROJECT_ROOT / "assistant" / "app.py"), path=CHAT_PATH)
    return app


def serve(settings: Settings) -> None:
    """Run the web server until Ctrl-C; the lifespan stops agents and the database cleanly."""
    import uvicorn

    app = create_app(settings)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), lifespan="on"
    )
