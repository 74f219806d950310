"""Helpers shared by CLI commands: one event loop per command, errors as one clear sentence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar, cast

import typer
from rich.console import Console

if TYPE_CHECKING:
    from assistant.events import Role
    from settings import Settings

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("kommandant")

ROLES = ("admin", "operator", "viewer")
RoleOption = Annotated[
    str,
    typer.Option(
        "--role",
        help="The role to act with: admin, operator or viewer. The CLI runs as the machine's owner, who "
        "holds the database already, so admin unless you ask for less.",
    ),
]
"""The ``--role`` option of commands that run turns: every front door passes the person's role."""


def role_of(value: str) -> Role:
    """The ``--role`` value as a role, or one sentence and exit 2."""
    if value not in ROLES:
        fail(f"Unknown role {value!r}: use admin, operator or viewer.")
    return cast("Role", value)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one red sentence and exit with ``code``; the traceback goes to the debug log only."""
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; our own errors become a sentence, Ctrl-C a quiet exit."""
    from embeddings import EmbeddingError
    from storage.errors import StorageError

    try:
        return asyncio.run(coro)
    except (StorageError, EmbeddingError) as err:
        log.debug("storage or embedding error", exc_info=True)
        fail(str(err))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def server_settings(host: str | None, port: int | None) -> Settings:
    """The settings of a server command (``up``, ``mcp --http``): ``--host``/``--port`` over the
    configured ones, and the database checked before the server starts (``require_database``)."""
    settings = load_settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    require_database(settings)
    return settings


def require_database(settings: Settings) -> None:
    """Before a server starts: reach the configured database once, or say why not in one sentence and
    exit 2 (inside the server's startup the same failure is a page of traceback). The embedded database
    is started here and left running for the server, which joins it instead of starting it again."""
    if settings.database_url is None:
        from storage.embedded import check_embedded

        run(check_embedded(settings.embedded_db_dir))
        return
    from storage import Database

    async def reach() -> None:
        async with Database.from_settings(settings, migrate=False):
            pass

    run(reach())


def load_settings() -> Settings:
    """Build the settings at a command's entry point; an invalid value becomes one sentence, exit 2."""
    from pydantic import ValidationError

    from settings import Settings

    try:
        settings = Settings()
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        fail(f"The setting KOMMANDANT_{where.upper()} is not valid: {first['msg']}.")
    from assistant.cli.secrets import configured_secrets

    setup_logging(settings.log_level, configured_secrets(settings), settings.log_format)
    return settings


def setup_logging(
    level: str, secrets: Iterable[str] = (), log_format: Literal["text", "json"] = "text"
) -> None:
    """Logging to stderr at the configured level: readable lines (rich tracebacks only in DEBUG), or one
    JSON object per record with the turn, call, agent and user ids (``log_format="json"``); ``secrets``
    (the configured passwords and keys) masked in every record, whichever logger writes it."""
    from rich.logging import RichHandler

    from assistant.cli.secrets import mask_secrets_in_logs
    from telemetry.logs import setup_log_format

    mask_secrets_in_logs(secrets)
    text = RichHandler(console=err_console, show_path=False, rich_tracebacks=level == "DEBUG")
    setup_log_format(log_format, level, text)
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    for noisy in ("aiormq", "aio_pika", "httpx", "engineio", "socketio", "watchfiles", "pgserver", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
