"""A local HTTP server speaking the part of the Slack Web API Kommandant uses: ``auth.test``,
``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``. Point ``AsyncWebClient(base_url=...)`` at
``server.api_url``. It checks the bot token like Slack (``invalid_auth``), answers 429 with
``Retry-After`` when told to, records every call, and can be stopped and started again on its port."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "xoxb-test-token"
BOT_USER = "UBOT0001"


@dataclass
class Call:
    """One Web API call as the server received it."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    answer: dict[str, Any] = field(default_factory=dict)


class SlackServer:
    """``async with SlackServer() as slack:`` serves on 127.0.0.1 until the block ends."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.port = 0
        self._ts = itertools.count(1)
        self._limits: dict[str, list[int]] = {}
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def rate_limit(self, method: str, retry_after: int = 1) -> None:
        """Answer the next call of ``method`` with 429 and ``Retry-After: retry_after``."""
        self._limits.setdefault(method, []).append(retry_after)

    def of(self, method: str) -> list[Call]:
        """Calls of one method, oldest first."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, within: float = 20.0, **match: Any) -> list[Call]:
        """The first ``count`` calls of ``method`` whose parameters include ``match``, once they came."""

        def found() -> list[Call]:
            return [c for c in self.of(method) if all(c.params.get(k) == v for k, v in match.items())]

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(found()) >= count)
        return found()[:count]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = dict(await request.json())
        else:
            params = dict(await request.post())
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self._limits.get(method):
            retry_after = self._limits[method].pop(0)
            await self._record(Call(method, {**params, "_rate_limited": True}))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
            )
        answer = self._answer(method, params)
        await self._record(Call(method, params, answer=answer))
        return web.json_response(answer, status=200 if answer["ok"] else 404)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "kommandant",
                    "team_id": "T0001", "user_id": BOT_USER, "bot_id": "B0001"}  # fmt: skip
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            message = {"text": params.get("text"), "ts": ts, "thread_ts": params.get("thread_ts")}
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": message}
        if method == "chat.update":
            return {
                "ok": True,
                "channel": params.get("channel"),
                "ts": params.get("ts"),
                "text": params.get("text"),
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        return {"ok": False, "error": "unknown_method"}

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
