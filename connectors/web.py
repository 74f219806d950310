"""The connectors inside the web server: ``/slack/events`` and ``/hooks/<name>`` routes, and the
connector registry started in the server's lifespan, on the web process's runtime.

The routes are plain Starlette routes of the hosting app, so its Host and Origin check applies to them;
each endpoint reads the raw body itself (no middleware reads it first), as signature checks need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from connectors.base import Connector
from connectors.notion import notion_connector
from connectors.registry import Backoff, ConnectorRegistry
from connectors.slack import EVENTS_PATH, SlackConnector
from connectors.webhooks import HOOKS_PATH, WebhookConnector
from settings import Settings
from storage.connectors import Deliveries

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from assistant.kommandant import Kommandant
    from assistant.runtime import Runtime

log = logging.getLogger(__name__)
KEEP_DELIVERIES = timedelta(days=7)
"""How long a delivery id (a Slack event, a webhook delivery, a reminder sent) is remembered."""
PRUNE_SECONDS = 6 * 3600.0


def configured(settings: Settings, kommandant: Kommandant) -> list[Connector]:
    """The connectors the settings turn on: Slack with a bot token, webhooks with any hook, Notion with
    an integration token."""
    found: list[Connector] = []
    if settings.slack_bot_token and settings.slack_bot_token.get_secret_value():
        found.append(SlackConnector(settings, kommandant))
    if settings.webhooks:
        found.append(WebhookConnector(settings.webhooks, kommandant))
    notion = notion_connector(settings)
    if notion is not None:
        found.append(notion)
    return found


class ConnectorHub:
    """The running connectors of one web process, and the HTTP endpoints that reach them."""

    def __init__(self, settings: Settings, *, backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.backoff = backoff
        self.registry: ConnectorRegistry | None = None

    @asynccontextmanager
    async def running(self, runtime: Runtime) -> AsyncIterator[ConnectorRegistry]:
        """Start the configured connectors on ``runtime`` under a registry until the block ends."""
        assert runtime.kommandant is not None and runtime.services is not None
        services = runtime.services
        registry = ConnectorRegistry(
            configured(self.settings, runtime.kommandant),
            services.database,
            services.bus,
            check_seconds=self.settings.connector_check_seconds,
            heartbeat_seconds=self.settings.heartbeat_interval,
            backoff=self.backoff,
        )
        pruning = asyncio.create_task(_forget_old_deliveries(Deliveries(services.database.sessionmaker)))
        try:
            async with registry:
                self.registry = registry
                try:
                    yield registry
                finally:
                    self.registry = None
        finally:
            pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruning

    def _connector(self, name: str) -> Any:
        return None if self.registry is None else self.registry.get(name)

    async def slack_events(self, request: Request) -> Response:
        """``POST /slack/events``."""
        slack = self._connector(SlackConnector.name)
        if slack is None:
            return PlainTextResponse("Slack is not configured here.", status_code=404)
        response: Response = await slack.handle_http(request)
        return response

    async def webhook(self, request: Request) -> Response:
        """``POST /hooks/<name>``."""
        hooks = self._connector(WebhookConnector.name)
        if hooks is None:
            return PlainTextResponse("No webhooks are configured here.", status_code=404)
        response: Response = await hooks.handle_http(request)
        return response


async def _forget_old_deliveries(deliveries: Deliveries) -> None:
    """Forget delivery ids older than ``KEEP_DELIVERIES`` now and then (platforms retry within minutes)."""
    while True:
        try:
            await deliveries.prune(KEEP_DELIVERIES)
        except Exception:  # a database blip; the next round prunes
            log.warning("forgetting old connector delivery ids failed", exc_info=True)
        await asyncio.sleep(PRUNE_SECONDS)


def mount(
    app: Starlette, settings: Settings, runtime: Callable[[], Runtime], *, backoff: Backoff | None = None
) -> ConnectorHub:
    """Serve ``/slack/events`` and ``/hooks/<name>`` in ``app`` and run the connectors in its lifespan,
    after the hosting lifespan opened the runtime (``runtime()``). ``backoff``: restart delays."""
    hub = ConnectorHub(settings, backoff=backoff)
    app.router.routes.append(Route(EVENTS_PATH, hub.slack_events, methods=["POST"]))
    app.router.routes.append(Route(HOOKS_PATH, hub.webhook, methods=["POST"]))
    hosted = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        async with hosted(target) as state, hub.running(runtime()):
            yield state

    app.router.lifespan_context = lifespan
    return hub
