"""Telling clients that something changed: ``notifications/resources/updated`` for the resources a session
subscribed to (``resources/subscribe``), and ``notifications/tools/list_changed`` or
``notifications/resources/list_changed`` for the sessions that listed the tools or the resources.

A notification carries a URI, never data: the client reads the resource again, as itself, through the
read tool with its visibility. Even so only sessions whose caller may see the change are told (an approval:
its requester and those who may approve).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from mcp.server.session import ServerSession
from pydantic import AnyUrl

from mcp_server.auth import Caller

log = logging.getLogger(__name__)


class Subscriptions:
    """Which live sessions watch which resources (and as whom), and which want tool-list changes."""

    def __init__(self, watchable: Collection[str]) -> None:
        """``watchable``: the URIs a client may subscribe to."""
        self.watchable = frozenset(watchable)
        self._watching: weakref.WeakKeyDictionary[ServerSession, dict[str, Caller]] = (
            weakref.WeakKeyDictionary()
        )
        self._listing: weakref.WeakSet[ServerSession] = weakref.WeakSet()
        self._listing_resources: weakref.WeakSet[ServerSession] = weakref.WeakSet()

    def subscribe(self, session: ServerSession, uri: str, caller: Caller) -> None:
        """Watch ``uri`` for ``session``; ``ValueError`` with a sentence for a URI that cannot be watched."""
        if uri not in self.watchable:
            can = ", ".join(sorted(self.watchable))
            raise ValueError(f"{uri} cannot be subscribed to; these can: {can}.")
        self._watching.setdefault(session, {})[uri] = caller

    def unsubscribe(self, session: ServerSession, uri: str) -> None:
        """Stop watching ``uri`` (nothing happens when it was not watched)."""
        self._watching.get(session, {}).pop(uri, None)

    @property
    def listing(self) -> bool:
        """Whether any live session listed the tools."""
        return len(self._listing) > 0

    def lists_tools(self, session: ServerSession) -> None:
        """``session`` listed the tools: tell it when they change."""
        self._listing.add(session)

    @property
    def listing_resources(self) -> bool:
        """Whether any live session listed the resources."""
        return len(self._listing_resources) > 0

    def watched(self, uri: str) -> bool:
        """Whether any live session watches ``uri``."""
        return any(uri in watched for watched in list(self._watching.values()))

    def lists_resources(self, session: ServerSession) -> None:
        """``session`` listed the resources: tell it when they change."""
        self._listing_resources.add(session)

    async def updated(self, uri: str, may_see: Callable[[Caller], bool]) -> int:
        """Tell every session watching ``uri`` whose caller ``may_see`` the change; how many were told."""
        told = 0
        for session, watched in list(self._watching.items()):
            caller = watched.get(uri)
            if caller is None or not may_see(caller):
                continue
            try:
                await session.send_resource_updated(AnyUrl(uri))
                told += 1
            except Exception:  # that client went away; the others still hear it
                log.debug("could not tell a session that %s changed", uri, exc_info=True)
                self._watching.pop(session, None)
        return told

    async def tools_changed(self) -> int:
        """Tell every session that listed the tools that the list changed; how many were told."""
        return await _tell(self._listing, "tools", lambda session: session.send_tool_list_changed())

    async def resources_changed(self) -> int:
        """Tell every session that listed the resources that they changed; how many were told."""
        return await _tell(
            self._listing_resources, "resources", lambda session: session.send_resource_list_changed()
        )


async def _tell(
    sessions: weakref.WeakSet[ServerSession],
    what: str,
    send: Callable[[ServerSession], Coroutine[Any, Any, None]],
) -> int:
    told = 0
    for session in list(sessions):
        try:
            await send(session)
            told += 1
        except Exception:  # that client went away; the others still hear it
            log.debug("could not tell a session that the %s changed", what, exc_info=True)
            sessions.discard(session)
    return told


__all__ = ["Subscriptions"]
