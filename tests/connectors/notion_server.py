"""A local HTTP server speaking the part of the Notion API (version 2025-09-03) Kommandant uses:
``POST /v1/data_sources/{id}/query`` (last_edited_time filter, sorts, pagination), ``GET
/v1/data_sources/{id}``, ``GET /v1/blocks/{id}/children`` (pagination, nesting via ``has_children``),
``PATCH /v1/blocks/{id}/children``, ``GET /v1/pages/{id}``, ``POST /v1/pages`` and ``GET /v1/users/me``.

It checks the bearer token and the ``Notion-Version`` header like Notion, enforces Notion's limits on
writes (100 blocks per request, 100 rich-text items per block, 2,000 characters per item: a 400
``validation_error`` otherwise), pages results at ``page_size`` (at most ``max_page_size``), rounds
``last_edited_time`` down to the minute, leaves trashed pages out of queries, answers 429/529 with
``Retry-After`` when told to, and records every request. It runs in a thread with its own event loop,
so a test's loop, a CLI in a subprocess and ``notion_client.AsyncClient`` can all reach it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

TOKEN = "ntn_test_token_0123456789"
VERSION = "2025-09-03"
BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    body: dict[str, Any] | None
    query: dict[str, str]
    status: int = 200
    at: float = field(default_factory=time.monotonic)


def stamp(moment: datetime) -> str:
    """Notion's form: rounded down to the minute, UTC, 'Z'."""
    return moment.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:00.000Z")


def text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content, "link": None}, "plain_text": content}]


def block(kind: str, content: str = "", children: list[dict[str, Any]] | None = None, **extra: Any) -> dict:
    """A block as a test builds it; ``children`` are nested blocks."""
    body: dict[str, Any] = {"rich_text": text(content), **extra} if kind not in ("table_row",) else extra
    return {"type": kind, kind: body, "children": children or []}


def table(rows: list[list[str]], header: bool = True) -> dict[str, Any]:
    cells = [block("table_row", cells=[text(c) for c in row]) for row in rows]
    return {
        "type": "table",
        "table": {"table_width": len(rows[0]), "has_column_header": header, "has_row_header": False},
        "children": cells,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON body (aiohttp keeps the bytes, so the middleware and the handler both read it)."""
    return (await request.json() if request.body_exists else None) or {}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"object": "error", "status": status, "code": code, "message": message, "request_id": "r-test"},
        status=status,
        headers=headers,
    )


class NotionServer:
    """``with NotionServer() as notion:`` serves on 127.0.0.1 (a thread) until the block ends."""

    def __init__(self, token: str = TOKEN, max_page_size: int = 2) -> None:
        self.token = token
        self.max_page_size = max_page_size
        self.requests: list[Request] = []
        self.pages: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[str]] = {}  # parent (page or block) id -> child block ids
        self.blocks: dict[str, dict[str, Any]] = {}
        self.data_sources: dict[str, dict[str, Any]] = {}
        self.port = 0
        self._limits: list[tuple[str, int, int]] = []  # (path part, status, retry-after)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)

    # -- the workspace ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def data_source(self, title_property: str = "Name") -> str:
        source_id = str(uuid.uuid4())
        self.data_sources[source_id] = {
            "object": "data_source",
            "id": source_id,
            "properties": {title_property: {"id": "title", "name": title_property, "type": "title"}},
        }
        return source_id

    def add_page(
        self, title: str, blocks: list[dict[str, Any]], *, source: str | None = None, edited: datetime = BASE
    ) -> str:
        """A page under data source ``source`` (or standalone) with ``blocks``; its id."""
        page_id = str(uuid.uuid4())
        parent = {"type": "data_source_id", "data_source_id": source} if source else {"type": "workspace"}
        with self._lock:
            self.pages[page_id] = {
                "object": "page",
                "id": page_id,
                "created_time": stamp(edited),
                "last_edited_time": stamp(edited),
                "in_trash": False,
                "archived": False,
                "parent": parent,
                "url": f"https://www.notion.so/{title.replace(' ', '-')}-{page_id.replace('-', '')}",
                "properties": {"Name": {"id": "title", "type": "title", "title": text(title)}},
            }
            self._set_children(page_id, blocks)
        return page_id

    def edit(self, page_id: str, blocks: list[dict[str, Any]], edited: datetime) -> None:
        """Replace a page's content, as someone editing it in Notion at ``edited``."""
        with self._lock:
            self._set_children(page_id, blocks)
            self.pages[page_id]["last_edited_time"] = stamp(edited)

    def trash(self, page_id: str) -> None:
        with self._lock:
            self.pages[page_id]["in_trash"] = True

    def rate_limit(self, path_part: str, retry_after: int = 1, status: int = 429) -> None:
        """Answer the next request whose path contains ``path_part`` with ``status`` and Retry-After."""
        self._limits.append((path_part, status, retry_after))

    def of(self, method: str, path_part: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    def text_of(self, parent_id: str) -> list[tuple[str, str]]:
        """(type, text) of each child block of ``parent_id``, rich-text items joined."""
        out = []
        for block_id in self.children.get(parent_id, []):
            data = self.blocks[block_id]
            items = data[data["type"]].get("rich_text", [])
            out.append((data["type"], "".join(i["text"]["content"] for i in items)))
        return out

    def _set_children(self, parent_id: str, blocks: list[dict[str, Any]]) -> None:
        ids = []
        for spec in blocks:
            block_id = str(uuid.uuid4())
            kids = spec.get("children") or []
            self.blocks[block_id] = {
                "object": "block",
                "id": block_id,
                "type": spec["type"],
                spec["type"]: spec[spec["type"]],
                "has_children": bool(kids),
                "in_trash": False,
            }
            self._set_children(block_id, kids)
            ids.append(block_id)
        self.children[parent_id] = ids

    # -- HTTP -----------------------------------------------------------------------------------------------
    @web.middleware
    async def _checks(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.body_exists else None
        record = Request(request.method, request.path, body, dict(request.query))
        self.requests.append(record)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            record.status = 401
            return _error(401, "unauthorized", "API token is invalid.")
        if request.headers.get("Notion-Version") != VERSION:
            record.status = 400
            return _error(400, "missing_version", "Notion-Version header failed validation.")
        for limit in self._limits:
            if limit[0] in request.path:
                self._limits.remove(limit)
                record.status = limit[1]
                code = "rate_limited" if limit[1] == 429 else "service_unavailable"
                return _error(limit[1], code, "Slow down.", {"Retry-After": str(limit[2])})
        response: web.StreamResponse = await handler(request)
        record.status = response.status
        return response

    def _paginate(self, items: list[dict[str, Any]], cursor: str | None, size: Any) -> dict[str, Any]:
        size = min(int(size or 100), self.max_page_size)
        start = int(cursor) if cursor else 0
        chunk = items[start : start + size]
        more = start + size < len(items)
        return {
            "object": "list",
            "results": chunk,
            "has_more": more,
            "next_cursor": str(start + size) if more else None,
            "type": "page_or_data_source",
        }

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "user", "id": "bot-1", "type": "bot", "name": "Kommandant test", "bot": {}}
        )

    async def _query(self, request: web.Request) -> web.Response:
        source = request.match_info["id"]
        if source not in self.data_sources:
            return _error(404, "object_not_found", f"Could not find data_source with ID: {source}.")
        body = await _body(request)
        since = ((body.get("filter") or {}).get("last_edited_time") or {}).get("on_or_after")
        with self._lock:
            pages = [
                p
                for p in self.pages.values()
                if p["parent"].get("data_source_id") == source
                and not p["in_trash"]
                and (since is None or p["last_edited_time"] >= stamp(datetime.fromisoformat(since)))
            ]
        pages.sort(key=lambda p: p["last_edited_time"])
        return web.json_response(self._paginate(pages, body.get("start_cursor"), body.get("page_size")))

    async def _source(self, request: web.Request) -> web.Response:
        source = self.data_sources.get(request.match_info["id"])
        if source is None:
            return _error(404, "object_not_found", "Could not find data_source.")
        return web.json_response(source)

    async def _page(self, request: web.Request) -> web.Response:
        page = self.pages.get(request.match_info["id"])
        if page is None:
            return _error(404, "object_not_found", "Could not find page.")
        return web.json_response(page)

    async def _list_children(self, request: web.Request) -> web.Response:
        parent = request.match_info["id"]
        if parent not in self.children:
            return _error(404, "object_not_found", "Could not find block.")
        items = [self.blocks[i] for i in self.children[parent]]
        query = request.query
        return web.json_response(self._paginate(items, query.get("start_cursor"), query.get("page_size")))

    @staticmethod
    def _invalid(children: list[dict[str, Any]]) -> str | None:
        """Notion's write limits, as its validation errors say them."""
        if len(children) > 100:
            return f"body.children.length should be ≤ `100`, instead was `{len(children)}`."
        for spec in children:
            items = spec[spec["type"]].get("rich_text", [])
            if len(items) > 100:
                return f"rich_text.length should be ≤ `100`, instead was `{len(items)}`."
            for item in items:
                size = len(item["text"]["content"])
                if size > 2000:
                    return f"text.content.length should be ≤ `2000`, instead was `{size}`."
        return None

    def _written(self, children: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"type": c["type"], c["type"]: c[c["type"]], "children": []} for c in children]

    async def _append(self, request: web.Request) -> web.Response:
        parent = request.match_info["id"]
        children = (await _body(request)).get("children", [])
        problem = self._invalid(children)
        if problem:
            return _error(400, "validation_error", problem)
        with self._lock:
            before = self.children.get(parent, [])
            self._set_children(parent, self._written(children))
            self.children[parent] = before + self.children[parent]
            if parent in self.pages:
                self.pages[parent]["last_edited_time"] = stamp(datetime.now(UTC))
        return web.json_response({"object": "list", "results": [], "has_more": False, "next_cursor": None})

    async def _create(self, request: web.Request) -> web.Response:
        body = await _body(request)
        children = body.get("children", [])
        problem = self._invalid(children)
        if problem:
            return _error(400, "validation_error", problem)
        parent = body["parent"]
        titles = [p["title"] for p in body.get("properties", {}).values() if "title" in p]
        title = "".join(i["text"]["content"] for i in (titles[0] if titles else []))
        source = parent.get("data_source_id")
        if source is not None and source not in self.data_sources:
            return _error(404, "object_not_found", "Could not find data_source.")
        if source is not None:
            name = next(iter(self.data_sources[source]["properties"]))
            if name not in body.get("properties", {}):
                return _error(400, "validation_error", f"{name} is expected to be title.")
        page_id = self.add_page(title, self._written(children), source=source, edited=datetime.now(UTC))
        if parent.get("page_id"):
            with self._lock:
                self.pages[page_id]["parent"] = parent
        return web.json_response(self.pages[page_id])

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._checks])
        app.router.add_get("/v1/users/me", self._me)
        app.router.add_post("/v1/data_sources/{id}/query", self._query)
        app.router.add_get("/v1/data_sources/{id}", self._source)
        app.router.add_get("/v1/pages/{id}", self._page)
        app.router.add_post("/v1/pages", self._create)
        app.router.add_get("/v1/blocks/{id}/children", self._list_children)
        app.router.add_patch("/v1/blocks/{id}/children", self._append)
        return app

    # -- lifecycle (a thread of its own) -------------------------------------------------------------------
    def __enter__(self) -> NotionServer:
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def start() -> None:
                self._runner = web.AppRunner(self._app())
                await self._runner.setup()
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                await site.start()
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

            loop.run_until_complete(start())
            started.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="notion-server", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def later(self, minutes: int) -> datetime:
        """BASE plus ``minutes`` (edit times for a test)."""
        return BASE + timedelta(minutes=minutes)
