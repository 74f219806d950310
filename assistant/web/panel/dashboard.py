"""The dashboard page (``/dashboard``), the offline API docs (``/api/docs``) and their static files.

Nothing is loaded from the internet and no page has an inline script (the page CSP allows script from
this server only): the dashboard is plain HTML, CSS and one script under ``static/``, its chart hand-drawn
SVG; the API docs use Swagger UI's files from the ``swagger-ui-bundle`` package.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
DASHBOARD_PATH = "/dashboard"
STATIC_PATH = "/dashboard/static"
SWAGGER_PATH = "/api/docs/assets"

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kommandant API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="swagger-ui" data-spec="/api/openapi.json"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{static}/docs.js"></script></body></html>
"""


def swagger_assets() -> Path | None:
    """Swagger UI's folder from the ``swagger-ui-bundle`` package, or None when it is not installed."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def page_routes() -> tuple[APIRouter, list[Mount]]:
    """The page routes and the static mounts (the dashboard's files; Swagger UI's when installed)."""
    router = APIRouter(include_in_schema=False)

    @router.get(DASHBOARD_PATH)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    @router.get("/api/docs")
    async def docs() -> HTMLResponse:
        if swagger_assets() is None:  # the spec is still there to read
            return HTMLResponse(
                "<p>Install swagger-ui-bundle for these docs; the spec is at "
                '<a href="/api/openapi.json">/api/openapi.json</a>.</p>'
            )
        return HTMLResponse(DOCS_PAGE.format(assets=SWAGGER_PATH, static=STATIC_PATH))

    mounts = [Mount(STATIC_PATH, app=StaticFiles(directory=STATIC), name="panel-static")]
    assets = swagger_assets()
    if assets is not None:
        mounts.append(Mount(SWAGGER_PATH, app=StaticFiles(directory=assets), name="swagger-ui"))
    return router, mounts
