"""The database lifecycle on real PostgreSQL: migrations, reuse of the embedded server, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from storage import Database, DatabaseUnavailableError, PgvectorMissingError, PostgresResultStore, redact
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import Base


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        return {r[0] for r in rows}


async def test_migrations_up_and_down_on_a_fresh_database(make_database_url) -> None:
    url = await make_database_url()
    async with Database(url) as db:
        assert await current_revision(db.engine) == head_revision()
        expected = {t.name for t in Base.metadata.sorted_tables}
        assert expected <= await _tables(db)
        await downgrade(db.engine, "base")
        assert await current_revision(db.engine) is None
        assert await _tables(db) == {"alembic_version"}
        await upgrade(db.engine)
        assert expected <= await _tables(db)


async def test_embedded_database_is_reused_and_keeps_data(pg_dir: Path) -> None:
    data_dir = pg_dir
    async with Database(data_dir=data_dir) as first:
        await PostgresResultStore(first.sessionmaker).put("k", "system_status", {"kept": True})
    assert not (data_dir / "postmaster.pid").exists(), "closing the last user must stop the server"
    async with Database(data_dir=data_dir) as second:
        assert await PostgresResultStore(second.sessionmaker).get("k") == {"kept": True}
    assert not (data_dir / "postmaster.pid").exists()


async def test_result_store_first_writer_wins(db: Database) -> None:
    store = PostgresResultStore(db.sessionmaker)
    assert await store.get("call-1") is None
    assert await store.put("call-1", "t", {"n": 1}) == {"n": 1}
    assert await store.put("call-1", "t", {"n": 2}) == {"n": 1}


async def test_unreachable_database_is_one_clear_sentence() -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        await Database("postgresql://kommandant:s3cret@127.0.0.1:1/nowhere").start()
    message = str(info.value)
    assert "Cannot reach the database" in message and "127.0.0.1:1" in message
    assert "s3cret" not in message


async def test_database_without_pgvector_is_refused() -> None:
    # The machine's system PostgreSQL 15 has no pgvector; skip where it does not run.
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        pytest.skip("no plain PostgreSQL on 127.0.0.1:5432 to try")
    try:
        with pytest.raises(PgvectorMissingError, match="no pgvector"):
            await Database("postgresql://postgres@127.0.0.1:5432/postgres").start()
    except DatabaseUnavailableError as err:
        pytest.skip(f"the PostgreSQL on 5432 did not let us in: {err}")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://u:pw@h/db?password=x&sslmode=require",
            "postgresql://u:***@h/db?password=***&sslmode=require",
        ),
        ("postgresql://u@h/db?password=secret", "postgresql://u@h/db?password=***"),
        (
            "postgresql://u@h/db?PWD=a&pass=b&api_key=c&token=d&client_secret=e&sslpassword=f",
            "postgresql://u@h/db?PWD=***&api_key=***&client_secret=***&pass=***&sslpassword=***&token=***",
        ),
        ("postgresql://u@h:5432/db?sslmode=require", "postgresql://u@h:5432/db?sslmode=require"),
    ],
)
def test_redact_hides_the_password_and_secret_query_parameters(url: str, shown: str) -> None:
    assert redact(url) == shown
