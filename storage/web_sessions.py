"""Web login sessions: the id a web login token carries, checked on every request.

A session ends when it is revoked (logout, ``kommandant users remove|passwd|role|logout``), when it
stays unused longer than the idle timeout, or at its absolute lifetime. Whatever path changed an
account, the rules below also hold, so no revocation can be forgotten: a session of an account lives
only while that account exists unchanged since the session began (a new password or role ends it), and
a session of the automatic local login lives only while no account exists.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import WebAccount, WebSession
from storage.records import Record

AUTO_PROVIDER = "auto"
"""The provider of the automatic local login (no account yet): such a session ends with the first account."""
DEFAULT_IDLE = timedelta(hours=12)
DEFAULT_LIFETIME = timedelta(days=7)
TOUCH_RESOLUTION = timedelta(minutes=1)
"""``last_seen_at`` is written at most once a minute per session: a busy page is not a commit per request."""
PURGE_AFTER = timedelta(days=1)
"""Sessions expired this long ago are deleted when a new one starts."""


class WebSessionRecord(Record):
    """One login session."""

    id: uuid.UUID
    username: str
    provider: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_because: str | None


def parse_session_id(value: object) -> uuid.UUID | None:
    """The session id in a token's claim, or None when it is missing or not a session id."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


class WebSessionRepository:
    """Create, check (renewing the idle timeout) and revoke web login sessions."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        idle: timedelta = DEFAULT_IDLE,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.idle = idle
        self.lifetime = lifetime

    async def create(self, username: str, provider: str) -> WebSessionRecord:
        """A new session of ``username`` signed in through ``provider``; it expires after ``lifetime``."""
        now = datetime.now(UTC)
        row = WebSession(
            id=uuid.uuid4(),
            username=username,
            provider=provider,
            last_seen_at=now,
            expires_at=now + self.lifetime,
        )
        async with self._sessionmaker() as session, session.begin():
            await session.execute(delete(WebSession).where(WebSession.expires_at < now - PURGE_AFTER))
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return WebSessionRecord.model_validate(row)

    async def is_live(self, session_id: uuid.UUID | str) -> WebSessionRecord | None:
        """The session if it may still be used, else None; renews its idle timeout (``touch``)."""
        sid = parse_session_id(session_id)
        if sid is None:
            return None
        now = datetime.now(UTC)
        no_account = ~exists(select(WebAccount.username))
        account_unchanged = exists(
            select(WebAccount.username).where(
                WebAccount.username == WebSession.username, WebAccount.updated_at <= WebSession.created_at
            )
        )
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(WebSession).where(
                    WebSession.id == sid,
                    WebSession.revoked_at.is_(None),
                    WebSession.expires_at > now,
                    WebSession.last_seen_at > now - self.idle,
                    or_(
                        and_(WebSession.provider == AUTO_PROVIDER, no_account),
                        and_(WebSession.provider != AUTO_PROVIDER, account_unchanged),
                    ),
                )
            )
            record = None if row is None else WebSessionRecord.model_validate(row)
        if record is not None and record.last_seen_at < now - TOUCH_RESOLUTION:
            await self.touch(sid)
        return record

    async def touch(self, session_id: uuid.UUID) -> None:
        """Mark the session used now: its idle timeout starts again (its absolute lifetime does not)."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(WebSession).where(WebSession.id == session_id).values(last_seen_at=datetime.now(UTC))
            )

    async def revoke(self, session_id: uuid.UUID | str, because: str = "logout") -> bool:
        """End one session; False if there is no such live session."""
        sid = parse_session_id(session_id)
        if sid is None:
            return False
        return await self._revoke(WebSession.id == sid, because) > 0

    async def revoke_many(
        self, because: str, *, username: str | None = None, provider: str | None = None
    ) -> int:
        """End every session of ``username`` and/or of ``provider`` (both None: every session);
        returns how many were still open."""
        conditions = []
        if username is not None:
            conditions.append(WebSession.username == username)
        if provider is not None:
            conditions.append(WebSession.provider == provider)
        return await self._revoke(and_(*conditions) if conditions else WebSession.id.is_not(None), because)

    async def _revoke(self, where: object, because: str) -> int:
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(WebSession)
                .where(where, WebSession.revoked_at.is_(None), WebSession.expires_at > now)  # type: ignore[arg-type]
                .values(revoked_at=now, revoked_because=because[:100])
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
