"""The embedded PostgreSQL 16 + pgvector (``pgserver``): started on demand, reused, stopped on exit."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from storage.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)
_users: dict[Path, int] = {}
"""How many open ``Database`` objects of this process use each embedded cluster."""


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
        server = await asyncio.to_thread(pgserver.get_server, data_dir, cleanup_mode="stop")
    except Exception as err:
        raise DatabaseUnavailableError(
            f"The embedded PostgreSQL in {data_dir} did not start ({type(err).__name__}: {err}). "
            f"See {data_dir / 'log'}, or set KOMMANDANT_DATABASE_URL to another Postgres."
        ) from err
    key = _key(data_dir)
    _users[key] = _users.get(key, 0) + 1
    return server


def embedded_url(server: Any) -> str:
    """The SQLAlchemy asyncpg URL of a started embedded server (a Unix socket)."""
    uri: str = server.get_uri()
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)


async def release_embedded(data_dir: Path) -> None:
    """One user of the cluster is done; the last one in this process stops it (unless another process
    still uses it: pgserver keeps a list). Not left to ``atexit``, which a process killed by a signal
    skips (uvicorn re-raises SIGTERM after its shutdown)."""
    key = _key(data_dir)
    _users[key] = _users.get(key, 1) - 1
    if _users[key] <= 0:
        _users.pop(key, None)
        await stop_embedded(data_dir)


async def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server of ``data_dir`` now if no other process uses it."""

    def stop() -> None:
        import pgserver.postgres_server as pgs

        server = pgs.PostgresServer._instances.get(_key(data_dir))
        if server is not None:
            server.cleanup()

    await asyncio.to_thread(stop)


def _key(data_dir: Path) -> Path:
    """The path as pgserver keys its servers (a few stat calls; fine on the event loop)."""
    return data_dir.expanduser().resolve()
