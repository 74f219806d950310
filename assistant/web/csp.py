"""The Content-Security-Policy of the web server: a page may load, run and connect to this server only.

Whatever reaches the chat (a document, a memory, another person's words in the audit list) cannot make
the browser call another address: no remote image, script, style, font, frame or connection is loaded,
and no form is sent elsewhere. ``assistant.web.content`` keeps markdown from asking for them in the
first place; the policy is the browser's guarantee.

The chat page has two small inline scripts (Chainlit's ``window.theme`` / ``window.transports`` and
``const global = globalThis``). They are allowed by their SHA-256 hashes, computed from the page as it
is served at start (``ContentPolicy.for_page``), never by ``'unsafe-inline'``: a script injected into
the page would not match. Every other allowance is listed in ``DIRECTIVES`` with the reason for it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "Content-Security-Policy"

DIRECTIVES: dict[str, tuple[str, ...]] = {
    # Anything not named below (fetch, XHR and the Socket.IO WebSocket, which 'self' covers as ws:/wss:
    # of this host; fonts, audio, video, workers, frames, manifests): this server only.
    "default-src": ("'self'",),
    # The bundled front end, plus the inline scripts' hashes (added per page). blob: because Chainlit's
    # microphone and speaker load their AudioWorklet modules from blob: URLs the page itself makes
    # (worklets fall under script-src; without it the microphone cannot start). Only script already
    # running in this origin can make a blob: URL.
    "script-src": ("'self'", "blob:"),
    # The front end sets style attributes and adds <style> elements while it runs (its components, the
    # toaster, the code highlighter); they are refused without 'unsafe-inline'. A style cannot run
    # script, and any url() in one still obeys img-src and default-src.
    "style-src": ("'self'", "'unsafe-inline'"),
    # data: for the icons inlined in the stylesheet, blob: for previews of images picked for upload.
    "img-src": ("'self'", "data:", "blob:"),
    "object-src": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'self'",),
}
"""Each directive and its sources; every allowance beyond ``'self'`` says why (docs/security.md too)."""

_INLINE_SCRIPT = re.compile(
    r"<script\b(?P<attributes>[^>]*)>(?P<body>.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_SRC = re.compile(r"\bsrc\s*=", re.IGNORECASE)


def inline_script_hashes(html: str) -> tuple[str, ...]:
    """The CSP source expressions (``'sha256-…'``) of the inline scripts in ``html``, in page order."""
    return tuple(
        _sha256_source(match.group("body"))
        for match in _INLINE_SCRIPT.finditer(html)
        if not _SRC.search(match.group("attributes"))
    )


def _sha256_source(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """The policy: ``DIRECTIVES`` with the hashes of the inline scripts the pages may run."""

    script_hashes: tuple[str, ...] = ()

    @classmethod
    def for_page(cls, html: str) -> ContentPolicy:
        """The policy for pages like ``html`` (the chat page as served): its inline scripts allowed."""
        return cls(tuple(dict.fromkeys(inline_script_hashes(html))))

    def directives(self) -> dict[str, tuple[str, ...]]:
        """Each directive with its sources, the script hashes included."""
        return {**DIRECTIVES, "script-src": (*DIRECTIVES["script-src"], *self.script_hashes)}

    def header(self) -> str:
        """The header's value."""
        return "; ".join(f"{name} {' '.join(sources)}" for name, sources in self.directives().items())


class ContentPolicyMiddleware:
    """Sends the policy with every HTTP response that has none of its own. The header only acts on
    documents (the chat's pages, and a file opened directly, such as an uploaded HTML or SVG file),
    so it goes on all of them rather than trusting each route's content type."""

    def __init__(self, app: ASGIApp, policy: ContentPolicy) -> None:
        self.app = app
        self.value = policy.header().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                if not _has(headers, HEADER.lower().encode()):
                    headers.append((HEADER.lower().encode(), self.value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)


def _has(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)
