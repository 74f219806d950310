"""Web chat accounts: names, roles and scrypt password hashes (``kommandant users add|list|remove``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import ConflictError, NotFoundError
from storage.models import ChainlitThread, ChainlitUser, WebAccount
from storage.records import Record

AccountRole = Literal["admin", "operator", "viewer"]
ROLES: tuple[str, ...] = get_args(AccountRole)
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# scrypt cost: N=2**15, r=8 takes ~32 MiB and tens of milliseconds per guess, which is the point.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


class WebAccountRecord(Record):
    """One account, without its password hash."""

    username: str
    role: AccountRole
    created_at: datetime


class InvalidAccountError(ValueError):
    """A user name, password or role that cannot be stored; the message says what is accepted."""


def validate_username(username: str) -> str:
    """The name as stored, or ``InvalidAccountError`` saying which names are accepted."""
    if not _NAME.match(username):
        raise InvalidAccountError(
            f"{username[:40]!r} is not a valid user name: use 1-100 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit."
        )
    return username


def validate_role(role: str) -> AccountRole:
    """The role, or ``InvalidAccountError`` naming the three roles."""
    if role not in ROLES:
        raise InvalidAccountError(f"{role!r} is not a role: use {', '.join(ROLES)}.")
    return role  # type: ignore[return-value]


def hash_password(password: str) -> str:
    """A salted scrypt hash in one string: ``scrypt$N$r$p$salt$hash`` (base64). Slow on purpose."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidAccountError(
            f"The password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters."
        )
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by ``hash_password`` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password[:MAX_PASSWORD_CHARS], base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY_HASH = "$".join(["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), "AAAA", "AAAA"])
"""Checked against for unknown names, so a wrong name costs the same time as a wrong password."""


class WebAccountRepository:
    """Accounts of the web chat in Postgres; hashing runs in a thread (it takes tens of milliseconds)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def add(self, username: str, password: str, role: str) -> WebAccountRecord:
        """Create an account; ``ConflictError`` if the name is taken."""
        validate_username(username)
        checked_role = validate_role(role)
        password_hash = await asyncio.to_thread(hash_password, password)
        row = WebAccount(username=username, password_hash=password_hash, role=checked_role)
        try:
            async with self._sessionmaker() as session, session.begin():
                session.add(row)
                await session.flush()
                await session.refresh(row)
                return WebAccountRecord.model_validate(row)
        except IntegrityError as err:
            raise ConflictError(f"There is already an account named {username!r}.") from err

    async def set_password(self, username: str, password: str) -> None:
        """Replace the password of an existing account."""
        password_hash = await asyncio.to_thread(hash_password, password)
        await self._change(username, password_hash=password_hash)

    async def set_role(self, username: str, role: str) -> WebAccountRecord:
        """Give an existing account another role (its open web sessions end: ``storage.web_sessions``)."""
        return await self._change(username, role=validate_role(role))

    async def _change(self, username: str, **values: str) -> WebAccountRecord:
        """Set columns of an existing account (``updated_at`` moves, which ends its web sessions)."""
        async with self._sessionmaker() as session, session.begin():
            row = await session.get(WebAccount, username)
            if row is None:
                raise NotFoundError(f"There is no account named {username!r}.")
            for column, value in values.items():
                setattr(row, column, value)
            await session.flush()
            await session.refresh(row)
            return WebAccountRecord.model_validate(row)

    async def remove(self, username: str, *, delete_threads: bool = False) -> int:
        """Delete an account; returns how many chat threads that person has (deleted or kept).

        Threads are kept by default: they are the record of what was asked and done, and an account
        added again under the same name sees them again. ``delete_threads`` removes them (with their
        messages, steps and feedback, by cascade) together with Chainlit's user row.
        """
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(delete(WebAccount).where(WebAccount.username == username))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFoundError(f"There is no account named {username!r}.")
            owned = ChainlitThread.user_identifier == username
            threads = int(await session.scalar(select(func.count()).where(owned)) or 0)
            if delete_threads:
                await session.execute(delete(ChainlitThread).where(owned))
                await session.execute(delete(ChainlitUser).where(ChainlitUser.identifier == username))
            return threads

    async def list(self) -> list[WebAccountRecord]:
        """Every account, by name."""
        async with self._sessionmaker() as session:
            rows = (await session.scalars(select(WebAccount).order_by(WebAccount.username))).all()
            return [WebAccountRecord.model_validate(row) for row in rows]

    async def get(self, username: str) -> WebAccountRecord | None:
        """The account named ``username``, or None."""
        async with self._sessionmaker() as session:
            row = await session.get(WebAccount, username)
            return None if row is None else WebAccountRecord.model_validate(row)

    async def count(self) -> int:
        """How many accounts exist (none: the embedded default may sign in a local admin)."""
        async with self._sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(WebAccount)) or 0)

    async def authenticate(self, username: str, password: str) -> WebAccountRecord | None:
        """The account if the password is right, else None; unknown names take as long as known ones."""
        async with self._sessionmaker() as session:
            row = await session.get(WebAccount, username[:100])
            stored = row.password_hash if row is not None else _DUMMY_HASH
            record = None if row is None else WebAccountRecord.model_validate(row)
        ok = await asyncio.to_thread(verify_password, password, stored)
        return record if ok and record is not None else None


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
