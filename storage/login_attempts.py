"""Failed password logins per account name and per client address, in Postgres so that every web
replica throttles the same way.

Names and addresses are kept only as a sha256 (a password typed into the name field is not stored).
How long to wait is the caller's decision (an ``AttemptPolicy``); this module makes it atomic: attempts
on one key are serialised by a row lock, and an attempt counts as a failure when it starts (``forgive``
or ``uncount`` it when it succeeds), so a burst of parallel guesses cannot slip through before the
first failure is recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import LoginAttempt

PURGE_AFTER = timedelta(days=1)
"""Counters without a failure for this long are deleted (every policy has forgotten them by then)."""


class AttemptPolicy(Protocol):
    """How failures of one scope count and how long they make the next attempt wait."""

    def failures_now(self, failures: int, last_failure: datetime | None, now: datetime) -> int:
        """The failures that still count at ``now`` (old ones are forgotten)."""
        ...

    def retry_after(self, failures: int, last_failure: datetime | None, now: datetime) -> float:
        """Seconds before the next attempt may start; 0 when it may start now."""
        ...


def attempt_key(value: str) -> str:
    """The stored form of an account name or an address."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class LoginAttemptRepository:
    """Counters of failed logins, one per (scope, name or address)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def claim(self, attempts: Mapping[str, tuple[str, AttemptPolicy]]) -> float:
        """Start a login attempt for each scope's value (``{"account": (name, policy), ...}``).

        Returns 0 and counts the attempt as a failure of every key, or returns the longest wait in
        seconds and counts nothing (the attempt is refused).
        """
        now = datetime.now(UTC)
        keys = {(scope, attempt_key(value)): policy for scope, (value, policy) in attempts.items()}
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                delete(LoginAttempt).where(LoginAttempt.last_failure_at < now - PURGE_AFTER)
            )
            await session.execute(
                insert(LoginAttempt)
                .values([{"scope": scope, "key": key, "failures": 0} for scope, key in keys])
                .on_conflict_do_nothing()
            )
            rows = (
                await session.scalars(
                    select(LoginAttempt)
                    .where(tuple_(LoginAttempt.scope, LoginAttempt.key).in_(list(keys)))
                    .order_by(LoginAttempt.scope, LoginAttempt.key)
                    .with_for_update()
                )
            ).all()
            wait = 0.0
            for row in rows:
                policy = keys[(row.scope, row.key)]
                row.failures = policy.failures_now(row.failures, row.last_failure_at, now)
                wait = max(wait, policy.retry_after(row.failures, row.last_failure_at, now))
            if wait > 0:
                return wait
            for row in rows:
                row.failures += 1
                row.last_failure_at = now
        return 0.0

    async def failed_now(self, keys: Mapping[str, str]) -> None:
        """The attempts ``claim`` counted have now failed: their wait runs from now, not from when
        they started (a slow password check does not eat into it)."""
        hashed = [(scope, attempt_key(value)) for scope, value in keys.items()]
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(LoginAttempt)
                .where(tuple_(LoginAttempt.scope, LoginAttempt.key).in_(hashed))
                .values(last_failure_at=datetime.now(UTC))
            )

    async def forgive(self, scope: str, value: str) -> None:
        """Forget every failure of this key (a right password for the account)."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                delete(LoginAttempt).where(
                    LoginAttempt.scope == scope, LoginAttempt.key == attempt_key(value)
                )
            )

    async def uncount(self, scope: str, value: str) -> None:
        """Take back the failure ``claim`` counted for an attempt that succeeded."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(LoginAttempt)
                .where(
                    LoginAttempt.scope == scope,
                    LoginAttempt.key == attempt_key(value),
                    LoginAttempt.failures > 0,
                )
                .values(failures=LoginAttempt.failures - 1)
            )
