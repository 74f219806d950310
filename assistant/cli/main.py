"""The ``kommandant`` command line. Heavy imports happen inside commands so ``--help`` stays instant."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from assistant.cli import audit as cli_audit
from assistant.cli import bots as cli_bots
from assistant.cli import bus as cli_bus
from assistant.cli import knowledge as cli_knowledge
from assistant.cli import mcp as cli_mcp
from assistant.cli import notion as cli_notion
from assistant.cli import schedules as cli_schedules
from assistant.cli import slack as cli_slack
from assistant.cli import turns as cli_turns
from assistant.cli import voice as cli_voice
from assistant.cli import web as cli_web
from assistant.cli.console import console, fail, load_settings, run, server_settings

app = typer.Typer(
    name="kommandant",
    help="Kommandant: a chat-first assistant with voice. Start it with `kommandant up`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The database: migrations and status.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command()(cli_turns.ask)
app.command()(cli_turns.parse)
app.command()(cli_turns.chat)
app.command()(cli_turns.worker)
app.add_typer(cli_audit.app, name="audit", help="The tamper-evident audit trail.")
app.add_typer(cli_bus.app, name="bus", help="The message bus: dead letters.")
for _module in (cli_web, cli_voice, cli_knowledge, cli_mcp, cli_schedules, cli_bots, cli_notion, cli_slack):
    _module.register(app)


@app.command()
def up(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: KOMMANDANT_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: KOMMANDANT_PORT or 8000).")
    ] = None,
    workers: Annotated[
        bool,
        typer.Option(
            "--workers",
            help="Distributed mode on one machine: also start each agent as its own `kommandant worker "
            "<agent>` process (same KOMMANDANT_DATABASE_URL and KOMMANDANT_AMQP_URL), stopped on exit.",
        ),
    ] = False,
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", help="With --workers: start only these agents (repeatable; default all)."),
    ] = None,
    agents_here: Annotated[
        bool,
        typer.Option("--agents-here", help="Distributed mode: run every agent inside this process anyway."),
    ] = False,
) -> None:
    """Start the web chat (and MCP over HTTP, the control panel, the scheduler). Embedded default: every
    agent in this process. With KOMMANDANT_AMQP_URL set: no agent here unless --workers or --agents-here.
    Ctrl-C stops it."""
    settings = server_settings(host, port)
    from agents import BUILTIN_AGENTS
    from assistant.web.server import serve

    names = agent or sorted(BUILTIN_AGENTS)
    unknown = sorted(set(names) - set(BUILTIN_AGENTS))
    if unknown:
        fail(f"Unknown agent(s): {', '.join(unknown)}. Known: {', '.join(sorted(BUILTIN_AGENTS))}.")
    if settings.embedded:
        if workers or agents_here:
            fail("--workers and --agents-here are for distributed mode: set KOMMANDANT_AMQP_URL first.")
        console.print("Embedded mode: every agent runs in this process, on the in-process bus.")
        serve(settings)
        return
    if workers and agents_here:
        fail("Choose one: --workers (agents in their own processes) or --agents-here (in this one).")
    if workers and settings.database_url is None:
        fail("--workers needs KOMMANDANT_DATABASE_URL: worker processes cannot share the embedded database.")
    if agents_here:
        settings.agents_in_process = True
        console.print("Distributed mode, --agents-here: every agent runs in this process, over RabbitMQ.")
        serve(settings)
        return
    if not workers:
        console.print(
            "Distributed mode (KOMMANDANT_AMQP_URL is set): this process runs the web chat, MCP over HTTP "
            "and the scheduler, and no agent. Start agents with `kommandant worker <agent>...`, or use "
            "`kommandant up --workers` (a worker process per agent) or `--agents-here`."
        )
        serve(settings)
        return
    console.print(f"Distributed mode: starting a `kommandant worker` process for {', '.join(names)}.")
    processes = cli_turns.start_worker_processes(names)
    # uvicorn re-raises a SIGTERM after its graceful shutdown; with the default action the process would
    # die there and leave its workers behind. As SystemExit the workers below are stopped first.
    signal.signal(signal.SIGTERM, cli_turns.exit_on_sigterm)
    try:
        serve(settings)
    finally:
        cli_turns.stop_worker_processes(processes, settings.worker_stop_grace)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations (they also run automatically on start)."""
    settings = load_settings()

    async def go() -> str | None:
        from storage import Database
        from storage.migrate import current_revision, upgrade

        async with Database.from_settings(settings, migrate=False) as db:
            await upgrade(db.engine, revision)
            return await current_revision(db.engine)

    console.print(f"Database is at revision [bold]{run(go())}[/].")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' empties it).")],
) -> None:
    """Revert migrations down to a revision. 'base' drops every Kommandant table."""
    settings = load_settings()

    async def go() -> str | None:
        from storage import Database
        from storage.migrate import current_revision, downgrade

        async with Database.from_settings(settings, migrate=False) as db:
            await downgrade(db.engine, revision)
            return await current_revision(db.engine)

    console.print(f"Database is at revision [bold]{run(go()) or 'base (empty)'}[/].")


@db_app.command("status")
def db_status() -> None:
    """Show the schema revision the database is at and the one this code expects."""
    settings = load_settings()

    async def go() -> str | None:
        from storage import Database
        from storage.migrate import current_revision

        async with Database.from_settings(settings, migrate=False) as db:
            return await current_revision(db.engine)

    from storage.migrate import head_revision

    console.print(
        f"Database revision: [bold]{run(go()) or 'empty'}[/]; this code expects [bold]{head_revision()}[/]."
    )


@app.command()
def doctor() -> None:
    """Check the database, pgvector, the broker, speech and embedding engines and the LLM."""
    settings = load_settings()
    from rich.markup import escape
    from rich.table import Table

    from assistant.cli.doctor import run_checks

    checks = run(run_checks(settings))
    colors = {"ok": "green", "warn": "yellow", "fail": "red", "off": "dim"}
    table = Table("check", "status", "detail", "how to fix", show_lines=False)
    for check in checks:
        table.add_row(
            escape(check.name),
            f"[{colors[check.status]}]{check.status}[/]",
            escape(check.detail),
            escape(check.fix),
        )
    console.print(table)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``kommandant`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None


__all__ = ["app", "fail", "main"]
