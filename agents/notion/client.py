"""A thin wrapper over ``notion_client.AsyncClient``: the API version pinned, rate limits waited out,
pagination followed to the end, and errors turned into sentences (never the token).

notion-client 3.1 has its own retries; they are off here (``retry=False``) so that one policy holds for
every call: 429 and 529 wait for ``Retry-After`` (or back off exponentially with jitter when it is
missing), bounded by ``max_wait`` seconds per request, and 5xx answers to reads are retried the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import parsedate_to_datetime
from time import time
from types import TracebackType
from typing import Any, Self

import httpx

from agents.errors import AgentError

__all__ = ["NOTION_VERSION", "NotionApi", "NotionError", "NotionNotFound", "notion_id"]

log = logging.getLogger(__name__)

NOTION_VERSION = "2025-09-03"
"""The API version this code is written for: databases hold data sources; pages are queried and created
under a ``data_source_id``; ``in_trash`` marks trashed pages."""
PAGE_SIZE = 100
"""Notion's largest page of results."""
_RETRIED = frozenset({429, 529})
_RETRIED_READS = frozenset({500, 502, 503, 504})
_FIRST_BACKOFF = 0.5


class NotionError(AgentError):
    """Notion refused or could not be reached; the message is a sentence for a person."""


class NotionNotFound(NotionError):
    """The page or data source does not exist or is not shared with the integration."""


def notion_id(reference: str) -> str:
    """A page or data source id from an id (with or without dashes) or a Notion URL."""
    from notion_client.helpers import extract_notion_id

    return extract_notion_id(reference) or reference.strip()


def _retry_after(headers: httpx.Headers | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    value = (headers or httpx.Headers()).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


class NotionApi:
    """``async with NotionApi(token, base_url) as api:`` - the calls the sync and write-back make."""

    def __init__(
        self,
        token: str,
        base_url: str = "https://api.notion.com",
        *,
        max_wait: float = 120.0,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        from notion_client import AsyncClient

        self._client = AsyncClient(
            auth=token,
            base_url=base_url.rstrip("/"),
            notion_version=NOTION_VERSION,
            timeout_ms=int(timeout * 1000),
            retry=False,
            logger=logging.getLogger("notion_client"),
        )
        self.max_wait = max_wait
        self._sleep = sleep
        self.requests = 0
        """Requests sent, retries included (write-back reports it)."""
        self.waited = 0.0
        """Seconds spent waiting out rate limits."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One API request, rate limits and (for reads) server errors waited out within ``max_wait``."""
        from notion_client.errors import HTTPResponseError, RequestTimeoutError

        waited, attempt = 0.0, 0
        while True:
            self.requests += 1
            try:
                result: dict[str, Any] = await self._client.request(
                    path=path, method=method, query=query, body=body
                )
                return result
            except HTTPResponseError as err:
                retried = err.status in _RETRIED or (method == "GET" and err.status in _RETRIED_READS)
                if not retried:
                    raise self._translate(err, path) from err
                delay = _retry_after(err.headers)
                if delay is None:
                    delay = min(_FIRST_BACKOFF * 2**attempt, 30.0) * (0.5 + random.random() / 2)
                if waited + delay > self.max_wait:
                    raise NotionError(
                        f"Notion is rate limiting or busy (HTTP {err.status}) and asked to wait "
                        f"{delay:g} s more; gave up after {waited:g} s. Try again later."
                    ) from err
                log.info("Notion answered %s to %s %s: waiting %.1f s", err.status, method, path, delay)
                await self._sleep(delay)
                waited += delay
                self.waited += delay
                attempt += 1
            except (RequestTimeoutError, httpx.HTTPError) as err:
                raise NotionError(f"Could not reach Notion ({type(err).__name__}).") from err

    @staticmethod
    def _translate(err: Any, path: str) -> NotionError:
        code = getattr(err.code, "value", err.code)
        if code == "object_not_found" or err.status == 404:
            return NotionNotFound(
                f"Notion has no {path.split('/')[0].rstrip('s').replace('_', ' ')} at {path} that this "
                "integration can see (share it with the integration in Notion)."
            )
        if code == "unauthorized" or err.status == 401:
            return NotionError("Notion refused the token (KOMMANDANT_NOTION_TOKEN): check it.")
        if code == "restricted_resource" or err.status == 403:
            return NotionError(f"The integration lacks the capability for {path} (check it in Notion).")
        return NotionError(f"Notion answered HTTP {err.status} to {path}: {str(err)[:200]}")

    async def paginate(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every result of a paginated list, following ``next_cursor`` to the end."""
        cursor: str | None = None
        while True:
            if method == "GET":
                page_query = {**(query or {}), "page_size": PAGE_SIZE}
                if cursor:
                    page_query["start_cursor"] = cursor
                response = await self.request(method, path, query=page_query)
            else:
                page_body = {**(body or {}), "page_size": PAGE_SIZE}
                if cursor:
                    page_body["start_cursor"] = cursor
                response = await self.request(method, path, query=query, body=page_body)
            for item in response.get("results", []):
                yield item
            previous, cursor = cursor, response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return
            if cursor == previous:  # a server that never advances must not loop a sync forever
                raise NotionError(f"Notion repeated the same page of results for {path}.")

    # -- the calls Kommandant makes ---------------------------------------------------------------------
    async def me(self) -> dict[str, Any]:
        """The integration's bot user: a cheap call that proves the token works."""
        return await self.request("GET", "users/me")

    def query_data_source(self, data_source_id: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Pages of a data source matching ``body`` (filter, sorts), all of them."""
        return self.paginate("POST", f"data_sources/{data_source_id}/query", body=body)

    async def data_source(self, data_source_id: str) -> dict[str, Any]:
        return await self.request("GET", f"data_sources/{data_source_id}")

    async def page(self, page_id: str) -> dict[str, Any]:
        return await self.request("GET", f"pages/{page_id}")

    def children(self, block_id: str) -> AsyncIterator[dict[str, Any]]:
        """A block's (or page's) direct children, all of them."""
        return self.paginate("GET", f"blocks/{block_id}/children")

    async def append(self, block_id: str, children: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.request("PATCH", f"blocks/{block_id}/children", body={"children": children})

    async def create_page(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "pages", body=body)
