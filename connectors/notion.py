"""The Notion connector: Notion's health in the connector registry.

Notion sends nothing Kommandant must answer (no events over a socket), so the connector's inbound side is
empty; its actions are the notion agent's tools (sync, create a page, append), reached through the
catalog like any other. ``start`` proves the token with a ``users/me`` call and ``health`` repeats it:
the cheapest call Notion has. The token is never logged nor put in a health sentence.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from connectors.base import ConnectorError, Health, HealthState
from settings import Settings

if TYPE_CHECKING:
    from notion_client import AsyncClient

__all__ = ["NOTION_VERSION", "NotionConnector", "notion_connector"]

NOTION_VERSION = "2025-09-03"
"""The API version pinned (the same the notion agent speaks)."""
HEALTH_TIMEOUT_MS = 10_000


class NotionConnector:
    """``start``/``health``/``stop`` for Notion, by the ``Connector`` protocol."""

    name = "notion"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: AsyncClient | None = None

    def _open(self) -> AsyncClient:
        from notion_client import AsyncClient

        token = self.settings.notion_token
        if token is None or not token.get_secret_value():
            raise ConnectorError("Notion is not configured: set KOMMANDANT_NOTION_TOKEN.")
        return AsyncClient(
            auth=token.get_secret_value(),
            base_url=self.settings.notion_base_url.rstrip("/"),
            notion_version=NOTION_VERSION,
            timeout_ms=HEALTH_TIMEOUT_MS,
            retry=False,  # a health check reports; the registry's backoff does the retrying
            logger=logging.getLogger("notion_client"),
        )

    async def _me(self) -> dict[str, Any]:
        if self._client is None:
            self._client = self._open()
        me: dict[str, Any] = await self._client.users.me()
        return me

    async def start(self) -> None:
        """Check the token once; raises ``ConnectorError`` with a sentence when Notion refuses it."""
        try:
            await self._me()
        except ConnectorError:
            raise
        except Exception as err:
            await self.stop()
            raise ConnectorError(f"Notion did not accept the connection: {_reason(err)}") from err

    async def health(self) -> Health:
        """Up when ``users/me`` answers; never raises."""
        try:
            me = await self._me()
        except Exception as err:
            return Health(HealthState.DOWN, f"Notion: {_reason(err)}")
        name = me.get("name") or (me.get("bot") or {}).get("workspace_name") or "the integration"
        return Health(HealthState.UP, f"signed in as {name}")

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _reason(err: Exception) -> str:
    """A short sentence for a failed call: the HTTP status or the kind of error, never the token."""
    status = getattr(err, "status", None)
    if status == 401:
        return "the token was refused (HTTP 401); check KOMMANDANT_NOTION_TOKEN"
    if status is not None:
        return f"HTTP {status}"
    if isinstance(err, ConnectorError):
        return str(err)
    return f"unreachable ({type(err).__name__})"


def notion_connector(settings: Settings, kommandant: object = None) -> NotionConnector | None:
    """The Notion connector when a token is configured, else None (started by ``connectors.web``)."""
    token = settings.notion_token
    return NotionConnector(settings) if token is not None and token.get_secret_value() else None
