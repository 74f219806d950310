"""Bearer tokens for the MCP HTTP endpoint, checked against their sha256 in Postgres.

The token itself is never logged or kept: the ``AccessToken`` handed to the SDK carries the hash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp.server.auth.provider import AccessToken, TokenVerifier

from assistant.events import Role
from storage.tokens import TokenRepository, hash_token

if TYPE_CHECKING:
    from assistant.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the token's user and role over HTTP, the configured local user over stdio."""

    user: str
    role: Role


class DatabaseTokenVerifier(TokenVerifier):
    """Accepts active tokens made with ``kommandant tokens create``; the role travels as the only scope."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    async def verify_token(self, token: str) -> AccessToken | None:
        services = self._runtime().services
        if services is None:
            return None
        record = await TokenRepository(services.database.sessionmaker).verify(token)
        if record is None:
            log.info("refused an MCP request with an unknown, revoked or expired token")
            return None
        return AccessToken(
            token="sha256:" + hash_token(token),
            client_id=record.name,
            subject=record.user_id,
            scopes=[record.role],
            expires_at=int(record.expires_at.timestamp()) if record.expires_at else None,
        )
