"""Which Host and Origin headers the web server answers: protection against DNS rebinding and
cross-origin requests, for every route of the app (chat, its login routes, uploads, Socket.IO, /mcp).

A page on another site reaches a server on 127.0.0.1 in two ways. It rebinds its own DNS name to
127.0.0.1: the browser then sends that foreign name as ``Host``. Or it calls from its own origin (another
site, or another port of this machine) with the user's cookies: the browser then sends its ``Origin``.
``HostCheckMiddleware`` refuses both before any route runs; ``HostPolicy.local_request`` is the stricter
test for signing someone in without a password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from settings import Settings

log = logging.getLogger(__name__)

UNKNOWN_HOST = "This server does not answer to that host name (see KOMMANDANT_ALLOWED_HOSTS).\n"
FOREIGN_ORIGIN = "Requests from another origin are refused (see KOMMANDANT_CORS_ORIGINS).\n"
POLICY_VIOLATION = 1008
"""WebSocket close code for a refused handshake (uvicorn answers it with HTTP 403)."""


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Allowed ``Host`` headers and cross-origin ``Origin`` headers, as patterns: an exact value, or
    ``name:*`` / ``scheme://name:*`` for any port (the MCP SDK's format). A request from the server's
    own origin (``Origin`` naming the ``Host`` it asked for) is always allowed."""

    hosts: frozenset[str]
    origins: frozenset[str] = frozenset()
    any_origin: bool = False
    """For a route that other sites must be able to post to (an OAuth provider's form_post callback,
    protected by its own state parameter): the Origin is not checked there, the Host still is."""

    @classmethod
    def create(cls, hosts: Iterable[str], origins: Iterable[str] = ()) -> HostPolicy:
        """A policy from pattern lists (compared in lower case)."""
        return cls(frozenset(h.lower() for h in hosts), frozenset(o.lower() for o in origins))

    @classmethod
    def for_web(cls, settings: Settings) -> HostPolicy:
        """The web server's: this machine's names, the bind address, ``KOMMANDANT_ALLOWED_HOSTS``;
        cross-origin only from ``KOMMANDANT_CORS_ORIGINS``."""
        return cls.create(settings.allowed_host_patterns, settings.cors_origins)

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request for ``host`` (the Host header; None when missing) is for this server."""
        return host is not None and _matches(host.lower(), self.hosts)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Whether a request carrying ``origin`` may be served: none sent (not from a page on another
        origin), the server's own origin, or an allowed cross origin."""
        if origin is None or self.any_origin:
            return True
        return same_origin(origin, host) or _matches(origin.lower(), self.origins)

    def local_request(self, headers: Mapping[str, str]) -> bool:
        """Whether a request comes from this server's own page or from no page at all: its Host is
        allowed and its Origin, when sent, is the server itself. Only such a request may be signed in
        without a password; allowed cross origins may not."""
        host = headers.get("host")
        origin = headers.get("origin")
        return self.host_allowed(host) and (origin is None or same_origin(origin, host))


def same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` (``scheme://name[:port]``) names the ``host`` (``name[:port]``) asked for."""
    scheme, separator, authority = origin.lower().partition("://")
    return bool(separator) and scheme in ("http", "https") and host is not None and authority == host.lower()


def _matches(value: str, patterns: frozenset[str]) -> bool:
    if value in patterns:
        return True
    base, separator, port = value.rpartition(":")
    return bool(separator) and port.isdigit() and f"{base}:*" in patterns


class HostCheckMiddleware:
    """Refuses an HTTP request or WebSocket handshake whose Host is not allowed (421, one line) or
    whose Origin is neither the server nor an allowed cross origin (403). Added last, so it runs first,
    before the mounted chat, Socket.IO and /mcp; ``routes`` give a path prefix a policy of its own."""

    def __init__(
        self, app: ASGIApp, policy: HostPolicy, routes: Sequence[tuple[str, HostPolicy]] = ()
    ) -> None:
        self.app = app
        self.policy = policy
        self.routes = tuple(routes)

    def policy_for(self, path: str) -> HostPolicy:
        """The policy of the first route prefix ``path`` lies under, else the default one."""
        for prefix, policy in self.routes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return policy
        return self.policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        policy = self.policy_for(scope["path"])
        headers = Headers(scope=scope)
        host, origin = headers.get("host"), headers.get("origin")
        if not policy.host_allowed(host):
            log.warning("refused a request for host %r (not in KOMMANDANT_ALLOWED_HOSTS)", (host or "")[:100])
            await _refuse(scope, receive, send, 421, UNKNOWN_HOST)
        elif not policy.origin_allowed(origin, host):
            log.warning(
                "refused a request from origin %r (not in KOMMANDANT_CORS_ORIGINS)", (origin or "")[:100]
            )
            await _refuse(scope, receive, send, 403, FOREIGN_ORIGIN)
        else:
            await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        return
    await PlainTextResponse(text, status_code=status)(scope, receive, send)
