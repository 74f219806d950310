"""The embedded PostgreSQL 16 + pgvector (``pgserver``): started on demand, reused, stopped on exit."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from storage.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)


async def start_embedded(data_dir: Path) -> Any:
    """Start (or join) the embedded server in ``data_dir`` and return its pgserver handle.

    pgserver keeps a list of the processes using a cluster; the last one to exit stops it, so a
    second ``kommandant`` process reuses the running server and the data stays across runs.
    """
    try:
        import pgserver
    except ImportError as err:  # pragma: no cover - pgserver is a core dependency
        raise DatabaseUnavailableError(
            "The embedded database needs the 'pgserver' package: pip install pgserver, "
            "or set KOMMANDANT_DATABASE_URL to a Postgres with pgvector."
        ) from err
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    log.info("starting the embedded PostgreSQL in %s", data_dir)
    try:
        return await asyncio.to_thread(pgserver.get_server, data_dir, cleanup_mode="stop")
    except Exception as err:
        raise DatabaseUnavailableError(
            f"The embedded PostgreSQL in {data_dir} did not start ({type(err).__name__}: {err}). "
            f"See {data_dir / 'log'}, or set KOMMANDANT_DATABASE_URL to another Postgres."
        ) from err


def embedded_url(server: Any) -> str:
    """The SQLAlchemy asyncpg URL of a started embedded server (a Unix socket)."""
    uri: str = server.get_uri()
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)


async def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server of ``data_dir`` now if this process is its last user (tests, shutdown)."""

    def stop() -> None:
        import pgserver.postgres_server as pgs

        server = pgs.PostgresServer._instances.get(data_dir)
        if server is not None:
            server.cleanup()

    await asyncio.to_thread(stop)
