"""Shared fixtures: one embedded PostgreSQL for the whole run, a clean database per test, RabbitMQ."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
import pytest_asyncio
from sqlalchemy import text

from settings import Settings
from storage import Database
from storage.models import Base

AMQP_URL = os.environ.get("KOMMANDANT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ON_CI = os.environ.get("CI", "").lower() == "true"


def require_service(what: str, reason: str) -> None:
    """Skip with a clear reason on a laptop; fail under CI=true, where every service must be there."""
    message = f"{what} is not available: {reason}"
    if ON_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure)")
    pytest.skip(message)


def require_tool(program: str, package: str) -> str:
    """The path of a program pip cannot install (``program`` is a name on PATH or a path): without it,
    skip off CI naming the Debian ``package`` to install, fail under CI=true. ``make test`` installs
    these packages itself when it runs as root or with passwordless sudo (scripts/test-setup.sh)."""
    found = shutil.which(program)
    if found is None:
        how = f"install it with `sudo apt-get install {package}` (`make test` does that as root)"
        require_service(package, f"{program} is not installed; {how}")
        raise AssertionError("unreachable")
    return found


def new_pg_dir() -> Path:
    """A fresh folder for an embedded cluster, outside pytest's private (mode 0700) temp folders:
    as root, pgserver runs PostgreSQL as the user 'pgserver', which must be able to reach it."""
    return Path(tempfile.mkdtemp(prefix="kommandant-test-pg-")) / "pgdata"


@pytest_asyncio.fixture(loop_scope="session")
async def pg_dir() -> AsyncIterator[Path]:
    """A data folder for a test's own embedded cluster, stopped and removed afterwards."""
    from storage.embedded import stop_embedded

    path = new_pg_dir()
    yield path
    await stop_embedded(path)
    shutil.rmtree(path.parent, ignore_errors=True)


THROWAWAY_CLUSTER = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""Server settings of the test cluster, which is deleted after the run: no flush to disk at each commit,
TRUNCATE or DROP DATABASE (a forced checkpoint). What a killed *process* wrote stays in the page cache,
so only the durability across an operating system crash is given up, which no test looks at."""


async def make_throwaway(database: Database) -> None:
    """Apply ``THROWAWAY_CLUSTER`` to the running test cluster (all three take effect on a reload)."""
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for name, value in THROWAWAY_CLUSTER.items():
            await conn.execute(text(f"ALTER SYSTEM SET {name} = {value}"))
        await conn.execute(text("SELECT pg_reload_conf()"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database() -> AsyncIterator[Database]:
    """One embedded PostgreSQL 16 + pgvector for the run, migrated to head."""
    data_dir = new_pg_dir()
    try:
        async with Database(data_dir=data_dir) as db:
            await make_throwaway(db)
            yield db
    finally:
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def _used_tables_sql() -> str:
    """One query naming the tables a test may have left something in: rows, or an identity sequence
    that was drawn from (``pg_sequences.last_value`` is NULL again only after a restart)."""
    with_rows = " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in Base.metadata.sorted_tables
    )
    drawn = (
        "SELECT DISTINCT t.relname::text FROM pg_sequences s "
        "JOIN pg_class q ON q.relname = s.sequencename AND q.relnamespace = 'public'::regnamespace "
        "JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = q.oid "
        "AND d.deptype IN ('a', 'i') "
        "JOIN pg_class t ON t.oid = d.refobjid "
        "WHERE s.schemaname = 'public' AND s.last_value IS NOT NULL"
    )
    return f"{with_rows} UNION {drawn}"


@pytest_asyncio.fixture(loop_scope="session")
async def db(database: Database) -> Database:
    """The session database, emptied before the test: the tables in use truncated, their identities
    restarted (truncating only those is what a test's setup costs; most tests touch a few tables)."""
    known = {t.name for t in Base.metadata.sorted_tables}
    async with database.engine.begin() as conn:
        used = sorted(set((await conn.execute(text(_used_tables_sql()))).scalars()) & known)
        if used:
            tables = ", ".join(f'"{name}"' for name in used)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return database


@pytest_asyncio.fixture(loop_scope="session")
async def make_database_url(database: Database) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Factory of brand-new empty databases on the session server (for migration tests)."""
    created: list[str] = []

    async def make() -> str:
        name = f"t_{uuid.uuid4().hex[:10]}"
        async with database.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        url = database.engine.url.set(database=name)
        return url.render_as_string(hide_password=False)

    yield make
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in created:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    """Settings for a test: the test database, a private data folder, the in-process bus."""
    return Settings(_env_file=None, data_dir=tmp_path / "data", database_url=db.url, amqp_url=None)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The RabbitMQ broker; skips off CI when it is unreachable, fails under CI=true."""
    parsed = urlparse(AMQP_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), timeout=2):
            pass
    except OSError as err:
        require_service("RabbitMQ", f"nothing answers at {parsed.hostname}:{parsed.port or 5672} ({err})")
    return AMQP_URL


@pytest.fixture
def bus_prefix() -> str:
    """A unique exchange/queue prefix, so concurrent test runs on one broker never meet."""
    return f"ktest{uuid.uuid4().hex[:8]}"
