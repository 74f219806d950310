"""The webhook front door: ``POST /hooks/<name>``, signed with HMAC-SHA256, each delivery acted on once.

A sender signs ``<timestamp>.<raw body>`` with the hook's secret and sends three headers:

- ``X-Kommandant-Timestamp``: Unix seconds when it signed; more than 5 minutes off is refused (replays);
- ``X-Kommandant-Signature``: ``sha256=`` and the hex HMAC-SHA256;
- ``X-Kommandant-Delivery``: an id unique per delivery; a delivery sent again with the same id does
  nothing the second time (the answer says ``duplicate``).

A wrong or missing signature, or a stale timestamp, gets 401 before the body is parsed. A hook in
``turn`` mode runs the payload's ``"text"`` as a turn of its configured user and role (the answer is 202;
the reply is published on the bus as ``webhooks.result.<name>``); a hook in ``event`` mode publishes the
payload as ``webhooks.<name>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from assistant.events import ReplyDone, ToolFinished, Turn
from connectors.base import Health, HealthState
from settings import WebhookConfig
from storage.connectors import Deliveries

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from assistant.kommandant import Kommandant

log = logging.getLogger(__name__)

CHANNEL = "webhook"
HOOKS_PATH = "/hooks/{name}"
TIMESTAMP_HEADER = "X-Kommandant-Timestamp"
SIGNATURE_HEADER = "X-Kommandant-Signature"
DELIVERY_HEADER = "X-Kommandant-Delivery"
MAX_AGE_SECONDS = 300
"""A signature older (or further in the future) than this is refused, as Slack does."""
MAX_BODY_BYTES = 1_000_000


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Kommandant-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> bool:
    """Whether the headers carry a fresh, correct signature of ``body``."""
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    signature = headers.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or not signature:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookConnector:
    """The configured hooks (``KOMMANDANT_WEBHOOKS``). Nothing to connect to: up while any is set."""

    name = "webhooks"

    def __init__(self, hooks: Mapping[str, WebhookConfig], kommandant: Kommandant) -> None:
        self.hooks = dict(hooks)
        self.kommandant = kommandant
        self.deliveries = Deliveries(kommandant.services.database.sessionmaker)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Nothing to open: deliveries arrive over the web server."""

    async def stop(self) -> None:
        """Cancel turns under way."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def health(self) -> Health:
        """Up while hooks are configured."""
        names = ", ".join(sorted(self.hooks))
        return Health(HealthState.UP, f"hooks: {names}") if self.hooks else Health(HealthState.OFF)

    async def handle_http(self, request: Request) -> Response:
        """``POST /hooks/<name>``: verify, de-duplicate, then run the turn or publish the event."""
        from starlette.responses import JSONResponse

        name = str(request.path_params.get("name", ""))
        config = self.hooks.get(name)
        if config is None:
            return JSONResponse({"error": "no such hook"}, status_code=404)
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        body = await request.body()  # the raw bytes the signature covers, read before anything else
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        if not verify(config.secret.get_secret_value(), request.headers, body):
            log.info("webhook %s: a delivery with a wrong or stale signature was refused", name)
            return JSONResponse(
                {"error": "wrong or missing signature, or a timestamp more than 5 minutes off"},
                status_code=401,
            )
        delivery = request.headers.get(DELIVERY_HEADER, "").strip()
        if not delivery or len(delivery) > 200:
            missing = f"{DELIVERY_HEADER} (1-200 characters) is required"
            return JSONResponse({"error": missing}, status_code=400)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        text = payload.get("text")
        if config.mode == "turn" and (not isinstance(text, str) or not text.strip()):
            return JSONResponse({"error": 'a turn hook needs a "text" string'}, status_code=400)
        if not await self.deliveries.first(f"hook:{name}", delivery):
            return JSONResponse({"status": "duplicate", "delivery": delivery})
        bus = self.kommandant.services.bus
        if config.mode == "event":
            await bus.publish(f"webhooks.{name}", {"hook": name, "delivery": delivery, "payload": payload})
            return JSONResponse({"status": "published", "delivery": delivery}, status_code=202)
        task = asyncio.create_task(self._run_turn(name, config, delivery, str(text)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONResponse({"status": "accepted", "delivery": delivery}, status_code=202)

    async def _run_turn(self, name: str, config: WebhookConfig, delivery: str, text: str) -> None:
        """The delivery's turn as the hook's user and role; its reply goes to ``webhooks.result.<name>``."""
        turn = Turn(
            text=text,
            user=config.user,
            channel=CHANNEL,
            thread=f"hook:{name}",
            role=config.role,
            idempotency_key=f"hook:{name}:{delivery}",
        )
        ok, reply = True, ""
        try:
            async for event in self.kommandant.handle(turn):
                if isinstance(event, ToolFinished) and not event.ok:
                    ok = False
                elif isinstance(event, ReplyDone):
                    reply = event.text
            result: dict[str, Any] = {"hook": name, "delivery": delivery, "ok": ok, "text": reply}
            await self.kommandant.services.bus.publish(f"webhooks.result.{name}", result)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook %s: the turn of delivery %s failed", name, delivery)
