"""MCP access tokens: created once (the plain token is shown then and never again), stored as a sha256."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import String, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import ConflictError, NotFoundError
from storage.models import McpToken
from storage.records import Record

TokenRole = Literal["admin", "operator", "viewer"]
TOKEN_PREFIX = "kmd_"
"""Every token starts with this, so secret scanners and people recognise one."""
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRecord(Record):
    """A token as the CLI lists it: never the token itself, only its first characters."""

    id: uuid.UUID
    name: str
    user_id: str
    role: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Neither revoked nor expired."""
        now = datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def hash_token(token: str) -> str:
    """The stored form of a token. A token has 256 random bits, so a plain sha256 cannot be brute-forced."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRepository:
    """Create, list, revoke and verify MCP bearer tokens."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def create(
        self, name: str, *, role: TokenRole, user_id: str, ttl: timedelta | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token; returns its record and the plain token, which is not kept anywhere."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = McpToken(
            name=name,
            user_id=user_id,
            role=role,
            token_hash=hash_token(token),
            prefix=token[:12],
            expires_at=datetime.now(UTC) + ttl if ttl else None,
        )
        try:
            async with self._sessionmaker() as session, session.begin():
                session.add(row)
                await session.flush()
                await session.refresh(row)
                record = TokenRecord.model_validate(row)
        except IntegrityError as err:
            raise ConflictError(f"A token called {name!r} exists already; pick another name.") from err
        return record, token

    async def list(self) -> list[TokenRecord]:
        """Every token, newest first (revoked ones too, for the record)."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(select(McpToken).order_by(McpToken.created_at.desc()))
            return [TokenRecord.model_validate(r) for r in rows]

    async def revoke(self, key: str) -> TokenRecord:
        """Revoke the token with this name or id (prefix); it stops working at its next request."""
        key = key.strip()
        async with self._sessionmaker() as session, session.begin():
            rows = (
                await session.scalars(
                    select(McpToken)
                    .where(
                        or_(
                            McpToken.name == key,
                            McpToken.id.cast(String).startswith(key.lower(), autoescape=True),
                        )
                    )
                    .limit(2)
                )
            ).all()
            if not rows:
                raise NotFoundError(f"There is no token called {key!r}; see `kommandant tokens list`.")
            if len(rows) > 1:
                raise ConflictError(f"More than one token matches {key!r}; give its name or more of its id.")
            row = rows[0]
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            await session.flush()
            return TokenRecord.model_validate(row)

    async def verify(self, token: str) -> TokenRecord | None:
        """The active token matching ``token``, or None. A read; ``last_used_at`` is written at most once a
        minute per token, so busy clients do not turn every request into a commit."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        now = datetime.now(UTC)
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(McpToken).where(
                    McpToken.token_hash == hash_token(token),
                    McpToken.revoked_at.is_(None),
                    or_(McpToken.expires_at.is_(None), McpToken.expires_at > now),
                )
            )
            if row is None:
                return None
            record = TokenRecord.model_validate(row)
        if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
            async with self._sessionmaker() as session, session.begin():
                await session.execute(
                    update(McpToken).where(McpToken.id == record.id).values(last_used_at=now)
                )
        return record
