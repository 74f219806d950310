"""``kommandant bots …``: register bots (``add``, ``remove``, manifests with ``reload``) and read the
registry (``list``, ``show``). Registering is an admin's write and is audited.

Starting, stopping and reading the logs of bots are tools of the bots agent: ask for them like anything
else (``kommandant ask "start the crawler bot"``), so the same policy, approvals and audit apply.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from assistant.cli.console import RoleOption, console, fail, load_settings, role_of, run

if TYPE_CHECKING:
    from settings import Settings
    from storage.audit import AuditLog
    from storage.bots import BotConfig, BotRecord, BotRegistry

T = TypeVar("T")

app = typer.Typer(
    help="Bots: register scripts the bot executor runs (add, list, show, remove, reload manifests).",
    no_args_is_help=True,
)

UserOption = Annotated[str, typer.Option(help="Who is doing it (for the audit trail).")]
OPTION_OF = {
    "name": "NAME",
    "command": "CMD",
    "cwd": "--cwd",
    "env": "--env",
    "secret_keys": "--secret",
    "memory_mb": "--memory-mb",
    "cpu_seconds": "--cpu-seconds",
    "cpu_percent": "--cpu-percent",
    "restart": "--restart",
    "max_restarts": "--max-restarts",
    "description": "--description",
}
"""The option a person typed for each ``BotConfig`` field, to name it in an error."""


def register(main: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
    main.add_typer(app, name="bots")


def _admin(role: str) -> None:
    """Registering a bot decides what runs on this machine: admins only."""
    if role_of(role) != "admin":
        fail(f"As a {role} you may not change the bot registry; ask an admin.")


async def _with_registry(settings: Settings, action: Callable[[BotRegistry, AuditLog], Awaitable[T]]) -> T:
    from storage import Database
    from storage.audit import AuditLog
    from storage.bots import BotRegistry

    async with Database.from_settings(settings) as db:
        return await action(BotRegistry(db.sessionmaker), AuditLog(db.sessionmaker))


def _pairs(values: list[str], option: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            fail(f"{option} takes KEY=VALUE, not {value!r}.")
        found[key] = rest
    return found


def _config(values: dict[str, Any]) -> BotConfig:
    """The registration as a ``BotConfig``, or one sentence naming the option that is wrong."""
    from pydantic import ValidationError

    from storage.bots import BotConfig

    try:
        return BotConfig.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(part) for part in first["loc"]]
        option = OPTION_OF.get(loc[0], loc[0]) if loc else "the bot"
        fail(f"{option}: {first['msg']}.")


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The bot's name: letters, digits, '-' and '_'.")],
    command: Annotated[
        list[str], typer.Argument(help="After --: the program and its arguments (never run by a shell).")
    ],
    cwd: Annotated[Path | None, typer.Option(help="Working folder of the bot.")] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="An environment variable K=V (repeatable).")
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", help="A secret environment variable K=V: masked in logs, never shown."),
    ] = None,
    memory_mb: Annotated[
        int | None, typer.Option(help="Kill it when its process tree's RSS passes this many MB.")
    ] = None,
    cpu_seconds: Annotated[int | None, typer.Option(help="CPU seconds per run (RLIMIT_CPU).")] = None,
    cpu_percent: Annotated[
        float | None, typer.Option(help="Kill it when it uses more CPU than this (% of one core).")
    ] = None,
    restart: Annotated[str, typer.Option(help="Restart policy: no, on-failure or always.")] = "on-failure",
    max_restarts: Annotated[int, typer.Option(help="Restarts in a row before it is left failed.")] = 3,
    description: Annotated[str, typer.Option(help="What the bot does.")] = "",
    executor: Annotated[
        str | None,
        typer.Option(help="Pin it to this executor (host name); default: the first executor to start it."),
    ] = None,
    user: UserOption = "local",
    role: RoleOption = "admin",
) -> None:
    """Register a bot: `kommandant bots add crawler --memory-mb 200 -- python crawl.py --site docs`."""
    _admin(role)
    settings = load_settings()
    plain, secrets = _pairs(env or [], "--env"), _pairs(secret or [], "--secret")
    config = _config(
        {
            "name": name,
            "command": tuple(command),
            "cwd": None if cwd is None else str(cwd.resolve()),
            "env": {**plain, **secrets},
            "secret_keys": tuple(secrets),
            "memory_mb": memory_mb,
            "cpu_seconds": cpu_seconds,
            "cpu_percent": cpu_percent,
            "restart": restart,
            "max_restarts": max_restarts,
            "description": description,
        }
    )

    async def go(registry: BotRegistry, audit: AuditLog) -> BotRecord:
        record = await registry.add(config, host=executor)
        await audit.append("bot_registered", actor=user, channel="cli", data=_audited(record))
        return record

    record = run(_with_registry(settings, go))
    console.print(f"Registered the bot [bold]{escape(record.name)}[/]: {escape(_command(record))}")


@app.command("list")
def list_bots() -> None:
    """The registered bots: what each should be doing, its newest run, limits and where it comes from."""
    from rich.table import Table
    from rich.text import Text

    async def go(registry: BotRegistry, audit: AuditLog) -> list[BotRecord]:
        return await registry.all()

    records = run(_with_registry(load_settings(), go))
    if not records:
        console.print("No bots are registered. Add one with `kommandant bots add NAME -- CMD ARG...`.")
        return
    table = Table("bot", "wants", "last run", "restart", "limits", "executor", "from", "description")
    for record in records:
        last = record.last_run
        table.add_row(
            Text(record.name, style="bold"),
            record.desired_state,
            Text(
                "never ran"
                if last is None
                else f"{last.status}" + (f": {last.reason}" if last.reason else "")
            ),
            record.config.restart,
            _limits(record.config) or "-",
            Text(record.host or "-"),
            Text(record.manifest_path or record.source),
            Text(record.config.description),
        )
    console.print(table)


@app.command()
def show(name: Annotated[str, typer.Argument(help="The bot's name.")]) -> None:
    """One bot in full: command, folder, environment (secrets masked), limits, and its latest runs."""

    async def go(registry: BotRegistry, audit: AuditLog) -> tuple[BotRecord, list[Any]]:
        return await registry.get(name), await registry.runs(name, limit=5)

    record, runs = run(_with_registry(load_settings(), go))
    config = record.config
    lines = [
        ("command", _command(record)),
        ("description", config.description or "-"),
        ("folder", config.cwd or "(the executor's)"),
        ("environment", ", ".join(f"{k}={v}" for k, v in _shown_env(config).items()) or "-"),
        ("limits", _limits(config) or "none"),
        ("restart", f"{config.restart}, at most {config.max_restarts} in a row"),
        ("registered from", record.manifest_path or "the command line"),
        ("executor", record.host or "not pinned yet (the first executor to start it)"),
        ("wants to be", record.desired_state),
        ("started by", f"{record.started_by} ({record.started_channel})" if record.started_by else "-"),
    ]
    console.print(f"[bold]{escape(record.name)}[/]")
    for label, value in lines:
        console.print(f"  {label:<16} {escape(value)}", highlight=False)
    for past in runs:
        ended = f"ended {past.ended_at:%Y-%m-%d %H:%M:%S}" if past.ended_at else "not ended"
        detail = f"; {past.reason}" if past.reason else ""
        console.print(
            f"  run {past.started_at:%Y-%m-%d %H:%M:%S} pid {past.pid or '-'} on {past.host or '-'}: "
            f"{past.status}, {ended}, peak {past.peak_rss / 1_048_576:.1f} MB, "
            f"{past.cpu_seconds:.1f} CPU s, {past.restarts} restarts{escape(detail)}",
            highlight=False,
        )


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The bot's name.")],
    user: UserOption = "local",
    role: RoleOption = "admin",
) -> None:
    """Unregister a bot and its run history (stop it first)."""
    _admin(role)

    async def go(registry: BotRegistry, audit: AuditLog) -> BotRecord:
        record = await registry.remove(name)
        await audit.append("bot_removed", actor=user, channel="cli", data={"bot": record.name})
        return record

    record = run(_with_registry(load_settings(), go))
    console.print(f"Removed the bot [bold]{escape(record.name)}[/].")


@app.command()
def reload(
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="Manifest folder (default: KOMMANDANT_BOTS_DIR or data_dir/bots)."),
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="Pin new bots to this executor (default: the first to start each).")
    ] = None,
    user: UserOption = "local",
    role: RoleOption = "admin",
) -> None:
    """Read the bot manifests (*.toml) again: new ones added, changed ones updated, vanished ones removed.

    A bot whose manifest vanished while it should run is kept until it is stopped. A bad manifest changes
    nothing: the error names each bad file and field."""
    _admin(role)
    settings = load_settings()
    where = folder or settings.bots_manifest_dir
    from agents.bots.manifests import ManifestError, sync_folder

    async def go(registry: BotRegistry, audit: AuditLog) -> Any:
        return await sync_folder(registry, audit, where, host=executor, actor=user)

    try:
        sync = run(_with_registry(settings, go))
    except ManifestError as err:
        fail(f"No bot was changed; fix the manifests first:\n{err}")
    parts = [
        f"{label} {', '.join(names)}"
        for label, names in (
            ("added", sync.added),
            ("updated", sync.updated),
            ("removed", sync.removed),
            ("kept (still running; stop them, then reload)", sync.kept_running),
        )
        if names
    ]
    console.print(
        f"Manifests in {escape(str(where))}: " + ("; ".join(parts) if parts else "no changes") + "."
    )


def _command(record: BotRecord) -> str:
    secrets = record.config.secret_values
    shown = shlex.join(record.config.command)
    for secret in sorted(secrets, key=len, reverse=True):
        shown = shown.replace(secret, "***")
    return shown


def _shown_env(config: BotConfig) -> dict[str, str]:
    return {k: "***" if k in config.secret_keys else v for k, v in config.env.items()}


def _limits(config: BotConfig) -> str:
    parts = [
        f"{config.memory_mb} MB" if config.memory_mb else "",
        f"{config.cpu_seconds} CPU s" if config.cpu_seconds else "",
        f"{config.cpu_percent:g} % CPU" if config.cpu_percent else "",
    ]
    return ", ".join(p for p in parts if p)


def _audited(record: BotRecord) -> dict[str, Any]:
    """What the audit trail keeps of a registration: no environment values, secrets masked."""
    config = record.config
    return {
        "bot": record.name,
        "command": _command(record),
        "cwd": config.cwd,
        "env": sorted(config.env),
        "limits": _limits(config),
        "restart": config.restart,
        "max_restarts": config.max_restarts,
        "executor": record.host,
    }


__all__ = ["app", "register"]
