"""Who is signed in to the web chat, and with which role.

Three ways in, all ending at an account in ``web_accounts`` (``kommandant users add``):
- password: the login form (the default);
- a trusted header (``KOMMANDANT_WEB_AUTH_HEADER``) set by a proxy in front of Kommandant;
- OAuth through Chainlit's providers (their ``OAUTH_*`` variables), for people who have an account.

The single-user embedded default (``KOMMANDANT_WEB_AUTH=auto``, no account yet) signs everyone in as
the ``local`` admin, so ``make up`` opens a usable chat on a fresh machine. As soon as one account
exists, that stops: the login form is shown and old ``local`` sessions are refused. Only a request for
an allowed host from the server's own page (or from no page) is signed in that way, never one from a
page on another site, another local port or a DNS name rebound to 127.0.0.1 (``assistant.web.hosts``).

Every login starts a session that can end (``assistant.web.sessions``); password logins are throttled
(``assistant.web.login``). Creating the first account can hand the local admin's threads, memories,
reminders and schedules to it (``storage.handover``; ``kommandant users add`` asks).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assistant.events import Role
from assistant.web.hosts import HostPolicy
from settings import Settings
from storage.web_accounts import WebAccountRecord, WebAccountRepository
from storage.web_sessions import AUTO_PROVIDER

log = logging.getLogger(__name__)

LOCAL_USER = "local"
"""The user name of the auto-login in the single-user embedded default."""
SECRET_FILE = "web_auth_secret"
SECRET_ENV = "CHAINLIT_AUTH_SECRET"


@dataclass(frozen=True, slots=True)
class Identity:
    """A signed-in person: the name their threads and turns carry, and their role."""

    user: str
    role: Role
    provider: str


def ensure_auth_secret(settings: Settings) -> str:
    """Give Chainlit the secret that signs login tokens, generating one on first start; returns it
    (the session check verifies tokens with it).

    Order: ``KOMMANDANT_WEB_AUTH_SECRET``, then an existing ``CHAINLIT_AUTH_SECRET``, then the file
    ``web_auth_secret`` in the data folder (created with mode 0600). The value is never logged.
    """
    if settings.web_auth_secret is not None:
        os.environ[SECRET_ENV] = settings.web_auth_secret.get_secret_value()
    elif not os.environ.get(SECRET_ENV):
        os.environ[SECRET_ENV] = _secret_file(settings.data_dir / SECRET_FILE)
    return os.environ[SECRET_ENV]


def _secret_file(path: Path) -> str:
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    log.info("generated a new web login secret in %s", path)
    return value


class WebAuth:
    """Login decisions over the account table; the Chainlit callbacks in ``app.py`` call these."""

    def __init__(self, settings: Settings, accounts: WebAccountRepository) -> None:
        self.settings = settings
        self.accounts = accounts
        self.hosts = HostPolicy.for_web(settings)

    def local_request(self, headers: Mapping[str, str]) -> bool:
        """Whether a request may be signed in without a password: its Host is this server's and its
        Origin, when sent, is the server itself (see ``HostPolicy.local_request``)."""
        return self.hosts.local_request(headers)

    async def auto_login_active(self) -> bool:
        """Whether the page should sign people in as the local admin without a form."""
        return self.settings.web_auth == "auto" and await self.accounts.count() == 0

    async def password_login(self, username: str, password: str) -> Identity | None:
        """The identity for a right name and password, else None (the page says the login failed; the
        login throttle logs and audits it without the name when that is no account: it may be a
        password typed into the wrong field)."""
        account = await self.accounts.authenticate(username.strip(), password)
        return None if account is None else _identity(account, "password")

    async def header_login(self, headers: Mapping[str, str]) -> Identity | None:
        """The trusted proxy header's account, or the local admin while auto-login is active and the
        request is local (``local_request``); ``headers`` are the request's, keys in lower case."""
        header = self.settings.web_auth_header
        if header:
            name = headers.get(header.lower()) or headers.get(header)
            if name:
                account = await self.accounts.get(name.strip())
                return None if account is None else _identity(account, "header")
        if not await self.auto_login_active():
            return None
        if not self.local_request(headers):
            log.warning(
                "refused the automatic local login for host %r, origin %r",
                str(headers.get("host"))[:100],
                str(headers.get("origin"))[:100],
            )
            return None
        return Identity(LOCAL_USER, "admin", AUTO_PROVIDER)

    async def oauth_login(self, identifier: str, provider: str) -> Identity | None:
        """An OAuth sign-in is let in only when an account of that name (usually the e-mail) exists."""
        account = await self.accounts.get(identifier)
        return None if account is None else _identity(account, provider)

    async def current_role(self, user: str) -> Role | None:
        """The role ``user`` has now, or None when they may no longer use the chat.

        Checked at every chat start and turn, so removing an account or creating the first one (which
        ends auto-login) takes effect at once, not when the login token expires.
        """
        account = await self.accounts.get(user)
        if account is not None:
            return account.role
        if user == LOCAL_USER and await self.auto_login_active():
            return "admin"
        return None


def _identity(account: WebAccountRecord, provider: str) -> Identity:
    return Identity(account.username, account.role, provider)
