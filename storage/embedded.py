"""The embedded PostgreSQL 16 + pgvector (``pgserver``): started on demand, reused, stopped on exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
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
    Raises ``DatabaseUnavailableError`` with one sentence naming the cause and what to do.
    """
    server = await check_embedded(data_dir)
    key = _key(data_dir)
    _users[key] = _users.get(key, 0) + 1
    return server


async def check_embedded(data_dir: Path) -> Any:
    """Start the embedded server in ``data_dir`` without becoming one of its users: a command checks it
    before its server starts (a failure is then one sentence, not a page of traceback in the server's
    startup), and the server's own ``start_embedded`` joins it (pgserver keeps one handle per folder in
    a process) and stops it when done; if nothing joins, pgserver stops it when the process exits."""
    try:
        import pgserver
    except ImportError as err:  # pragma: no cover - pgserver is a core dependency
        raise DatabaseUnavailableError(
            "The embedded database needs the 'pgserver' package: pip install pgserver, "
            "or set KOMMANDANT_DATABASE_URL to a Postgres with pgvector."
        ) from err
    try:
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    except OSError as err:
        raise DatabaseUnavailableError(
            f"The embedded PostgreSQL cannot use the folder {data_dir} ({err.strerror or err}): set "
            "KOMMANDANT_DATA_DIR to a folder you can write to, or KOMMANDANT_DATABASE_URL to another "
            "Postgres."
        ) from err
    log.info("starting the embedded PostgreSQL in %s", data_dir)
    server_log = data_dir / "log"
    seen = await asyncio.to_thread(_size, server_log)
    try:
        with _pgserver_errors_at_debug():
            return await asyncio.to_thread(pgserver.get_server, data_dir, cleanup_mode="stop")
    except Exception as err:
        log.debug("the embedded PostgreSQL did not start", exc_info=True)
        fatal = await asyncio.to_thread(_fatal_lines, server_log, seen)
        raise DatabaseUnavailableError(not_started(data_dir, err, fatal)) from err


def not_started(data_dir: Path, err: BaseException, fatal: str | None) -> str:
    """One sentence for a server that did not start: the cause (PostgreSQL's own FATAL line when it
    wrote one, else the error) and what to do about it."""
    cause = (fatal or _short(err)).rstrip(".")
    if "incompatible with server" in cause:
        hint = (
            "the folder was made by another PostgreSQL version: move it aside (it holds the data) so a new "
            "one is made, or set KOMMANDANT_DATABASE_URL to a Postgres of that version"
        )
    elif "lock file" in cause or "another server" in cause:
        hint = "another PostgreSQL uses that folder: stop it, or set KOMMANDANT_DATA_DIR to another folder"
    elif isinstance(err, PermissionError) or "ermission denied" in cause:
        hint = "make the folder writable for the user running Kommandant, or set KOMMANDANT_DATA_DIR"
    else:
        hint = (
            f"see {data_dir / 'log'}, repair or move the folder aside, or set KOMMANDANT_DATABASE_URL to "
            "another Postgres"
        )
    return f"The embedded PostgreSQL in {data_dir} did not start ({cause}): {hint}."


def _short(err: BaseException) -> str:
    """The error in a few words: a failed command is named by its program, not its whole command line."""
    cmd = getattr(err, "cmd", None)
    if isinstance(cmd, list | tuple) and cmd:
        return f"{Path(str(cmd[0])).name} exited with status {getattr(err, 'returncode', '?')}"
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fatal_lines(server_log: Path, start: int) -> str | None:
    """PostgreSQL's last FATAL or PANIC message (with its DETAIL) written to its log after ``start``, or
    the last line it wrote there (an error found before its logging started has no level)."""
    try:
        with server_log.open("rb") as f:
            f.seek(start)
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    found: str | None = None
    for i, line in enumerate(lines):
        for level in ("FATAL:", "PANIC:"):
            if level in line:
                found = line.split(level, 1)[1].strip()
                following = lines[i + 1] if i + 1 < len(lines) else ""
                if "DETAIL:" in following:
                    found += ": " + following.split("DETAIL:", 1)[1].strip()
    if found is None and lines and lines[-1].strip():
        found = lines[-1].strip().removeprefix("postgres: ")
    return found


@contextlib.contextmanager
def _pgserver_errors_at_debug() -> Iterator[None]:
    """pgserver logs a failed start as a page-long ERROR; ours says it in one sentence, so its records
    go to the debug log only while starting."""
    logger = logging.getLogger("pgserver")

    def demote(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            log.debug("pgserver: %s", record.getMessage())
            return False
        return True

    logger.addFilter(demote)
    try:
        yield
    finally:
        logger.removeFilter(demote)


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
