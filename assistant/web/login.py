"""Password login throttled per account name and per client address, every refusal audited.

``LoginThrottleMiddleware`` wraps Chainlit's password login route (``POST /chat/login``): before the
password is checked it claims an attempt (``storage.login_attempts``, with the policies of
``assistant.web.throttle``); a refused attempt gets **429** with ``Retry-After`` and is not checked at
all. After Chainlit answered, a wrong name or password (401) is audited and a right one clears the
account's count. The client address is the connecting one, or the one a trusted proxy forwarded
(``KOMMANDANT_TRUSTED_PROXIES``). No password ever reaches the audit trail or the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.web.throttle import ACCOUNT, ADDRESS, ThrottlePolicy, whole_seconds
from storage.audit import AuditLog
from storage.login_attempts import LoginAttemptRepository
from storage.web_accounts import WebAccountRepository

log = logging.getLogger(__name__)

REFUSED_KIND = "login_refused"
"""Audit kind of a refused password login (wrong name or password, or throttled)."""
UNKNOWN_ACCOUNT = "(no such account)"
"""What the audit row shows for a name that is no account: it may be a password typed in the wrong field."""
TOO_MANY = "tooManyAttempts"
MAX_FORM_BYTES = 64 * 1024
"""A login form is two short fields; anything larger is refused before it is read into memory."""


class LoginGuard:
    """Decides whether a password login may be tried now, and records how it went."""

    def __init__(
        self,
        attempts: LoginAttemptRepository,
        audit: AuditLog,
        accounts: WebAccountRepository,
        *,
        account_policy: ThrottlePolicy = ACCOUNT,
        address_policy: ThrottlePolicy = ADDRESS,
    ) -> None:
        self.attempts = attempts
        self.audit = audit
        self.accounts = accounts
        self.account_policy = account_policy
        self.address_policy = address_policy

    async def admit(self, name: str, address: str) -> float:
        """0 when the attempt may go on (it counts as a failure until ``succeeded``), else the seconds
        to wait; a refusal is audited."""
        wait = await self.attempts.claim(
            {"account": (name, self.account_policy), "address": (address, self.address_policy)}
        )
        if wait > 0:
            await self._refused(name, address, "too many failed attempts", retry_after=whole_seconds(wait))
        return wait

    async def failed(self, name: str, address: str) -> None:
        """A wrong name or password: audited (the failure was counted by ``admit``; its wait starts now)."""
        await self.attempts.failed_now({"account": name, "address": address})
        await self._refused(name, address, "wrong name or password")

    async def succeeded(self, name: str, address: str) -> None:
        """A right password: the account's failures are forgiven, this attempt is not held against
        the address."""
        await self.attempts.forgive("account", name)
        await self.attempts.uncount("address", address)

    async def _refused(self, name: str, address: str, reason: str, retry_after: int | None = None) -> None:
        account = await self.accounts.get(name) if name else None
        shown = account.username if account is not None else UNKNOWN_ACCOUNT
        data: dict[str, str | int] = {"account": shown, "address": address, "reason": reason}
        if retry_after is not None:
            data["retry_after"] = retry_after
        log.info("refused a web login for %s from %s: %s", shown, address, reason)
        await self.audit.append(REFUSED_KIND, actor=shown, owner=shown, channel="web", data=data)


class LoginThrottleMiddleware:
    """Throttles ``POST path`` (the password login) with the guard ``guard()`` returns (None while
    the server is not running: the login is then answered 503)."""

    def __init__(self, app: ASGIApp, path: str, guard: Callable[[], LoginGuard | None]) -> None:
        self.app = app
        self.path = path
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        guard = self.guard()
        if guard is None:
            await PlainTextResponse("Kommandant is still starting.\n", status_code=503)(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await PlainTextResponse("The login form is too large.\n", status_code=413)(scope, receive, send)
            return
        replay = _replay(body, receive)
        name = await _form_name(scope, replay())
        address = (scope.get("client") or ("unknown",))[0]
        wait = await guard.admit(name, address)
        if wait > 0:
            await _too_many(whole_seconds(wait))(scope, receive, send)
            return

        async def settle(message: Message) -> None:
            """Record the outcome before the client hears it (so the audit row is there when it does)."""
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    await guard.succeeded(name, address)
                elif message["status"] == 401:
                    await guard.failed(name, address)
            await send(message)

        await self.app(scope, replay(), settle)


def _too_many(seconds: int) -> JSONResponse:
    """429 with the wait: ``detail`` is the key the login page translates, ``message`` the sentence."""
    return JSONResponse(
        {
            "detail": TOO_MANY,
            "message": f"Too many failed sign-ins: wait {seconds} s and try again.",
            "retry_after": seconds,
        },
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _form_name(scope: Scope, receive: Receive) -> str:
    """The ``username`` field of the login form ("" when there is none or the form cannot be read:
    Chainlit then refuses the request itself)."""
    try:
        form = await Request(scope, receive).form()
    except (MultiPartException, ValueError):
        return ""
    name = form.get("username")
    await form.close()
    return name.strip()[:100] if isinstance(name, str) else ""


def _replay(body: bytes, receive: Receive) -> Callable[[], Receive]:
    """Fresh ``receive`` callables that hand out ``body`` once, then the client's own ``receive``
    (which tells when it disconnects)."""

    def make() -> Receive:
        sent = False

        async def replayed() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replayed

    return make
