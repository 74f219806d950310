"""The database lifecycle: resolve the URL, start the embedded server if needed, check, migrate."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.embedded import embedded_url, release_embedded, start_embedded
from storage.errors import DatabaseUnavailableError, PgvectorMissingError
from storage.migrate import upgrade

CONNECT_TIMEOUT = 10.0
IDLE_PING_SECONDS = 5.0


def to_async_url(url: str) -> str:
    """Accept ``postgres://``, ``postgresql://`` or ``postgresql+asyncpg://`` and return the asyncpg form."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


_SECRET_PARAM = re.compile(
    r"([?&])([^=&]*(?:password|pass|pwd|token|key|secret)[^=&]*)=([^&]*)", re.IGNORECASE
)
"""A query parameter holding a secret: ``password=``, ``sslpassword=``, ``pwd=``, ``token=``, ``api_key=``…"""


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs: the one after the user name and any
    query parameter that holds a secret (``?password=…``, ``pwd``, ``token``, ``key``, ``secret``)."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"
    return _SECRET_PARAM.sub(r"\1\2=***", shown)


class Database:
    """Owns the engine and session factory; ``async with Database(...) as db`` starts and stops it."""

    def __init__(
        self,
        url: str | None = None,
        *,
        data_dir: Path | None = None,
        migrate: bool = True,
        pool_size: int = 10,
    ) -> None:
        if url is None and data_dir is None:
            raise ValueError("give a database URL or a data folder for the embedded server")
        self._url = to_async_url(url) if url else None
        self._data_dir = data_dir
        self._migrate = migrate
        self._pool_size = pool_size
        self._server: Any = None
        self._engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, migrate: bool = True) -> Database:
        """Build from ``Settings``: ``database_url`` if set, else the embedded server in ``data_dir``."""
        url = settings.database_url.get_secret_value() if settings.database_url else None
        return cls(url, data_dir=settings.embedded_db_dir, migrate=migrate)

    @property
    def embedded(self) -> bool:
        return self._url is None

    @property
    def url(self) -> str:
        """The URL in use (password included: never log it, use ``redact``)."""
        if self._engine is None:
            raise RuntimeError("the database is not started")
        return self._engine.url.render_as_string(hide_password=False)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the database is not started")
        return self._engine

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        if self._sessionmaker is None:
            raise RuntimeError("the database is not started")
        return self._sessionmaker

    async def start(self) -> None:
        """Start the embedded server if needed, connect, check pgvector and run migrations."""
        url = self._url
        if url is None:
            assert self._data_dir is not None
            self._server = await start_embedded(self._data_dir)
            url = embedded_url(self._server)
        try:
            engine = create_async_engine(
                url,
                pool_size=self._pool_size,
                max_overflow=self._pool_size,
                pool_recycle=1800,
                connect_args={"timeout": CONNECT_TIMEOUT},
            )
            _ping_when_idle(engine)
            _recycle_on_connection_loss(engine)
        except Exception as err:
            raise DatabaseUnavailableError(
                f"The database URL {redact(url)} is not valid ({err}). Expected postgresql://user:pass@host:port/db."
            ) from err
        try:
            await _check(engine, url)
            if self._migrate:
                await upgrade(engine)
        except BaseException:
            await engine.dispose()
            if self._server is not None:
                self._server = None
                await release_embedded(self._data_dir)  # type: ignore[arg-type]
            raise
        self._engine = engine
        self._sessionmaker = async_sessionmaker(engine, expire_on_commit=False)

    async def close(self) -> None:
        """Dispose the pool and release the embedded server (stopped once no process uses it)."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessionmaker = None
        if self._server is not None:
            self._server = None
            assert self._data_dir is not None
            await release_embedded(self._data_dir)

    async def __aenter__(self) -> Database:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def is_connection_lost(err: BaseException) -> bool:
    """Whether ``err`` (or what it wraps) means the server connection is gone: a restart, a kill, a cut."""
    import asyncpg

    lost = (
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.InternalClientError,
        asyncpg.exceptions.InterfaceError,
        ConnectionError,
        OSError,
    )
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, lost) or getattr(seen, "connection_invalidated", False):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _recycle_on_connection_loss(engine: AsyncEngine) -> None:
    """Tell SQLAlchemy that lost connections are disconnects, so it replaces the whole pool at once."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _classify(context: Any) -> None:
        if not context.is_disconnect and is_connection_lost(context.original_exception):
            context.is_disconnect = True


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    Pinging on every checkout (``pool_pre_ping``) costs a round trip per session, a third of a turn's
    database time; a connection that was used a moment ago is alive. After a database restart, the idle
    ones are found dead here and replaced; a connection that dies while in use fails its statement and
    SQLAlchemy invalidates the pool, so the next attempt (the bus retries calls) gets fresh ones.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as err:
            raise DisconnectionError("pooled connection is dead") from err
        if not alive:
            raise DisconnectionError("pooled connection is dead")


async def _check(engine: AsyncEngine, url: str) -> None:
    """Reach the server and make sure pgvector is there; translate failures into clear sentences."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT + 2), engine.connect() as conn:
            available = await conn.scalar(
                text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
            )
            if not available:
                raise PgvectorMissingError(
                    f"The database at {redact(url)} has no pgvector extension. Install pgvector on that "
                    "server (e.g. the pgvector/pgvector Docker image), or unset KOMMANDANT_DATABASE_URL "
                    "to use the embedded PostgreSQL."
                )
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            await conn.commit()
    except PgvectorMissingError:
        raise
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatabaseUnavailableError(
            f"Cannot reach the database at {redact(url)}: {reason}. Check KOMMANDANT_DATABASE_URL "
            "and that the server is running, or unset it to use the embedded PostgreSQL."
        ) from err
