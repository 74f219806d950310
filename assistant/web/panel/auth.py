"""Who calls the control panel, and with which role.

Three ways in, checked in this order:
- ``Authorization: Bearer kmd_…``: a token of the MCP token store (``kommandant tokens create``); its
  user and role;
- the web chat's login cookie (the dashboard in a browser): its session must be live and the account's
  role is read now, as the chat does on every turn;
- ``?ticket=…`` on ``GET /api/events`` only: a short-lived, signed ticket from ``POST /api/events/ticket``,
  because a browser's EventSource cannot send an Authorization header and a long-lived token never goes
  into a URL (URLs end up in logs and history).

No way in: 401 with ``WWW-Authenticate: Bearer``; a role below the route's: 403.

A token's answer is kept for ``trust_seconds`` (``KOMMANDANT_WEB_SESSION_CHECK_SECONDS``, as the web
sessions' check): a revoked token stops working within those seconds, and a busy script does not cost a
database read per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from fastapi import HTTPException, Request

from assistant.events import Role
from assistant.web.sessions import bearer_token, token_from_cookies

if TYPE_CHECKING:
    from assistant.web.auth import WebAuth
    from assistant.web.sessions import WebSessions
    from storage.tokens import TokenRepository

RANK: dict[Role, int] = {"viewer": 0, "operator": 1, "admin": 2}
TICKET_SECONDS = 60.0
"""How long an event-stream ticket may be used to open a stream (an open stream stays open)."""
_ROLES = frozenset(get_args(Role))
CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """The person behind a request: user id, role, and how they signed in (token, cookie, ticket)."""

    user: str
    role: Role
    via: str

    @property
    def admin(self) -> bool:
        """Whether this person sees everyone's rows and events."""
        return self.role == "admin"


class Tickets:
    """Short-lived tickets for the event stream, signed with the web login secret (so any replica of the
    web server accepts a ticket another one issued)."""

    def __init__(self, secret: str, *, ttl: float = TICKET_SECONDS, clock: Callable[[], float] = time.time):
        self._key = hashlib.sha256(b"kommandant-panel-ticket:" + secret.encode()).digest()
        self.ttl = ttl
        self._clock = clock

    def issue(self, principal: Principal) -> str:
        """A ticket for ``principal`` valid for ``ttl`` seconds."""
        body = json.dumps({"u": principal.user, "r": principal.role, "e": self._clock() + self.ttl})
        raw = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        return f"{raw}.{self._sign(raw)}"

    def verify(self, ticket: str) -> Principal | None:
        """The ticket's principal, or None when it is forged, malformed or expired."""
        raw, _, signature = ticket.partition(".")
        if not raw or not hmac.compare_digest(signature, self._sign(raw)):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            user, role, expires = str(body["u"]), body["r"], float(body["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < self._clock() or role not in _ROLES:
            return None
        return Principal(user=user, role=role, via="ticket")

    def _sign(self, raw: str) -> str:
        return hmac.new(self._key, raw.encode(), hashlib.sha256).hexdigest()[:43]


class PanelAuth:
    """Resolves a request's principal (see the module docstring)."""

    def __init__(
        self,
        tokens: Callable[[], TokenRepository],
        sessions: Callable[[], WebSessions | None],
        web_auth: Callable[[], WebAuth | None],
        tickets: Tickets,
        *,
        trust_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens, self._sessions, self._web_auth = tokens, sessions, web_auth
        self.tickets = tickets
        self.trust_seconds = trust_seconds
        self._clock = clock
        self._seen: dict[str, tuple[float, Principal | None]] = {}  # sha256 of the token -> answer

    async def principal(self, request: Request, *, ticket_allowed: bool = False) -> Principal | None:
        """The caller, or None when the request carries no valid credential."""
        bearer = bearer_token(request.headers.get("authorization"))
        if bearer is not None:
            return await self._token_principal(bearer)
        cookie = token_from_cookies(request.headers.get("cookie", ""))
        if cookie is not None:
            found = await self._cookie_principal(cookie)
            if found is not None:
                return found
        ticket = request.query_params.get("ticket")
        if ticket_allowed and ticket:
            return self.tickets.verify(ticket)
        return None

    async def _token_principal(self, token: str) -> Principal | None:
        key = hashlib.sha256(token.encode()).hexdigest()  # the plain token is not kept, even in memory
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and seen[0] > now:
            return seen[1]
        record = await self._tokens().verify(token)
        found = None
        if record is not None and record.role in _ROLES:
            found = Principal(user=record.user_id, role=record.role, via="token")  # type: ignore[arg-type]
        if len(self._seen) >= CACHE_LIMIT:
            self._seen = {k: v for k, v in self._seen.items() if v[0] > now}
            if len(self._seen) >= CACHE_LIMIT:
                self._seen.clear()
        self._seen[key] = (now + self.trust_seconds, found)
        return found

    async def _cookie_principal(self, token: str) -> Principal | None:
        sessions, web_auth = self._sessions(), self._web_auth()
        if sessions is None or web_auth is None or not await sessions.check(token):
            return None
        claims = sessions.claims(token) or {}
        user = str(claims.get("identifier", ""))
        role = await web_auth.current_role(user) if user else None
        return None if role is None else Principal(user=user, role=role, via="cookie")


def requires(
    auth: Callable[[], PanelAuth], role: Role, *, ticket_allowed: bool = False
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller, if signed in (else 401) with at least ``role`` (else 403)."""

    async def dependency(request: Request) -> Principal:
        principal = await auth().principal(request, ticket_allowed=ticket_allowed)
        if principal is None:
            raise HTTPException(
                401, "Sign in: a bearer token or the web login.", headers={"WWW-Authenticate": "Bearer"}
            )
        if RANK[principal.role] < RANK[role]:
            raise HTTPException(403, f"As a {principal.role} you may not do this; it needs {role}.")
        return principal

    return dependency
