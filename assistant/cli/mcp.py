"""CLI: the MCP commands: `mcp` (the server on stdio or HTTP), `tokens create|list|revoke` (issue 8)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated, Literal

import typer
from rich.markup import escape

from assistant.cli.console import console, err_console, fail, load_settings, run, server_settings

tokens_app = typer.Typer(help="Bearer tokens of the MCP HTTP endpoint.", no_args_is_help=True)


def mcp(
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp (needs a token) instead of stdio.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="HTTP address (default: KOMMANDANT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: KOMMANDANT_PORT).")] = None,
) -> None:
    """Kommandant as an MCP server for IDE assistants (Claude Desktop, VS Code, Cursor).

    stdio (default): the IDE starts this command and talks over stdin/stdout; calls run as
    KOMMANDANT_MCP_USER with role KOMMANDANT_MCP_ROLE (admin). --http: every request needs
    `Authorization: Bearer <token>` from `kommandant tokens create`.
    """
    if http:
        from mcp_server.http import serve

        serve(server_settings(host, port))
        return
    from mcp_server.stdio import serve_stdio

    run(serve_stdio(load_settings()))


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="A name for the token, e.g. 'vscode-laptop'.")],
    role: Annotated[
        Literal["admin", "operator", "viewer"], typer.Option(help="What the token may do (see the README).")
    ] = "operator",
    user: Annotated[
        str | None, typer.Option(help="Whose memory and reminders it acts on (default: the name).")
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=1, help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Create a token and print it ONCE; only its sha256 is stored."""
    settings = load_settings()
    name = name.strip()
    if not name or len(name) > 100:
        fail("Give the token a name of 1 to 100 characters.")

    async def go() -> str:
        from storage import Database
        from storage.tokens import TokenRepository

        async with Database.from_settings(settings) as db:
            _, token = await TokenRepository(db.sessionmaker).create(
                name, role=role, user_id=user or name, ttl=timedelta(days=days) if days else None
            )
            return token

    token = run(go())
    err_console.print(
        f"Created token [bold]{escape(name)}[/] (role {role}, user {escape(user or name)}). "
        "Copy it now: it is not shown again."
    )
    sys.stdout.write(token + "\n")


@tokens_app.command("list")
def tokens_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False) -> None:
    """List tokens (never the tokens themselves: only their first characters)."""
    settings = load_settings()

    async def go() -> list[dict[str, object]]:
        from storage import Database
        from storage.tokens import TokenRepository

        async with Database.from_settings(settings) as db:
            records = await TokenRepository(db.sessionmaker).list()
        return [{**r.model_dump(mode="json"), "active": r.active} for r in records]

    rows = run(go())
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    if not rows:
        console.print("No tokens yet: `kommandant tokens create NAME --role operator`.")
        return
    from rich.table import Table

    table = Table("name", "role", "user", "starts with", "created", "last used", "state")
    for row in rows:
        state = "active" if row["active"] else ("revoked" if row["revoked_at"] else "expired")
        table.add_row(
            *(
                escape(str(row[k] or "—"))
                for k in ("name", "role", "user_id", "prefix", "created_at", "last_used_at")
            ),
            state,
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name (or id prefix).")]) -> None:
    """Revoke a token: its next request gets 401."""
    settings = load_settings()

    async def go() -> str:
        from storage import Database
        from storage.tokens import TokenRepository

        async with Database.from_settings(settings) as db:
            return (await TokenRepository(db.sessionmaker).revoke(name)).name

    console.print(f"Revoked token [bold]{escape(run(go()))}[/].")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
    app.command()(mcp)
    app.add_typer(tokens_app, name="tokens")
