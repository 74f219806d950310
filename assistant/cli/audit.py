"""``kommandant audit …``: check the tamper-evident audit trail and read its newest rows."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.cli.console import console, load_settings, run
from settings import Settings

if TYPE_CHECKING:
    from storage.audit import AuditEntry, VerifyReport

app = typer.Typer(
    help="The tamper-evident audit trail: verify the hash chain, show the newest rows.",
    no_args_is_help=True,
)


async def _verify(settings: Settings) -> VerifyReport:
    from storage import Database
    from storage.audit import AuditLog

    async with Database.from_settings(settings) as db:
        return await AuditLog(db.sessionmaker).verify()


async def _tail(settings: Settings, limit: int, kind: str | None) -> list[AuditEntry]:
    from storage import Database
    from storage.audit import AuditLog

    async with Database.from_settings(settings) as db:
        return await AuditLog(db.sessionmaker).tail(limit, kind=kind)


@app.command()
def verify() -> None:
    """Walk the whole hash chain; exit 1 and name the first bad row if anything was changed or deleted."""
    from rich.markup import escape

    report = run(_verify(load_settings()))
    if not report.ok:
        console.print(
            f"[bold red]Audit trail NOT intact:[/] [red]{escape(report.problem or '')}[/]", soft_wrap=True
        )
        raise typer.Exit(1)
    console.print(f"[bold green]Audit trail intact: {report.rows_checked} rows verified.[/]", soft_wrap=True)
    if report.head_hash:
        console.print(
            f"[dim]Head hash {report.head_hash} (keep a copy elsewhere to detect a rewritten chain).[/]",
            soft_wrap=True,
        )


@app.command()
def tail(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many rows to show.")] = 20,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only rows of this kind.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
) -> None:
    """Show the newest rows of the audit trail, newest last."""
    entries = run(_tail(load_settings(), limit, kind))
    if as_json:
        for entry in entries:
            typer.echo(entry.model_dump_json())
        return
    if not entries:
        console.print(
            "The audit trail has no rows" + (f" of kind {kind!r}." if kind else "."), highlight=False
        )
        return
    _print_table(entries)


def _print_table(entries: list[AuditEntry]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table("seq", "time (UTC)", "actor", "channel", "kind", "tool", "data", "hash")
    for entry in entries:
        data = json.dumps(entry.data, ensure_ascii=False, sort_keys=True)
        table.add_row(
            str(entry.seq),
            entry.ts.strftime("%Y-%m-%d %H:%M:%S"),
            Text(entry.actor),
            Text(entry.channel or ""),
            Text(entry.kind, style="bold"),
            Text(entry.tool or ""),
            Text(data if len(data) <= 200 else data[:199] + "…"),
            Text(entry.hash[:12], style="dim"),
        )
    console.print(table)


__all__ = ["app"]
