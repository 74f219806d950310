"""CLI: which Kommandant account a Slack user acts as: ``kommandant slack map|unmap|users`` (issue 20)."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from assistant.cli.console import console, fail, load_settings, run

slack_app = typer.Typer(
    help="Slack: map Slack users to Kommandant accounts (unmapped users get KOMMANDANT_SLACK_DEFAULT_ROLE).",
    no_args_is_help=True,
)
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,49}$")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
    app.add_typer(slack_app, name="slack")


@slack_app.command("map")
def map_user(
    slack_user: Annotated[
        str, typer.Argument(help="The Slack member id, e.g. U0123ABCD (profile → ⋮ → Copy member ID).")
    ],
    account: Annotated[str, typer.Argument(help="The Kommandant account their turns run as.")],
    role: Annotated[
        str | None,
        typer.Option(help="Role when ACCOUNT is no web account (a web account's own role always applies)."),
    ] = None,
) -> None:
    """Let a Slack user act as a Kommandant account (their memory, reminders, role)."""
    from storage.web_accounts import InvalidAccountError, validate_role, validate_username

    if not _SLACK_ID.match(slack_user):
        fail(f"{slack_user[:60]!r} is not a Slack member id (it looks like U0123ABCD).")
    try:
        validate_username(account)
        if role is not None:
            validate_role(role)
    except InvalidAccountError as err:
        fail(str(err))

    async def go() -> str:
        from storage import Database
        from storage.audit import AuditLog
        from storage.connectors import SlackUsers
        from storage.web_accounts import WebAccountRepository

        async with Database.from_settings(load_settings()) as db:
            web_account = await WebAccountRepository(db.sessionmaker).get(account)
            if web_account is None and role is None:
                fail(f"{account} is no web account: give its role with --role admin|operator|viewer.")
            kept = web_account.role if web_account is not None else str(role)
            await SlackUsers(db.sessionmaker).map(slack_user, account, kept)
            await AuditLog(db.sessionmaker).append(
                "slack_user_mapped",
                actor="cli",
                data={"slack_user": slack_user, "account": account, "role": kept},
            )
            return kept

    kept = run(go())
    console.print(f"Slack user [bold]{slack_user}[/] now acts as [bold]{account}[/] ({kept}).")


@slack_app.command("unmap")
def unmap_user(slack_user: Annotated[str, typer.Argument(help="The Slack member id.")]) -> None:
    """Forget a Slack user's account: they get KOMMANDANT_SLACK_DEFAULT_ROLE again."""

    async def go() -> None:
        from storage import Database
        from storage.audit import AuditLog
        from storage.connectors import SlackUsers

        async with Database.from_settings(load_settings()) as db:
            await SlackUsers(db.sessionmaker).unmap(slack_user)
            await AuditLog(db.sessionmaker).append(
                "slack_user_unmapped", actor="cli", data={"slack_user": slack_user}
            )

    run(go())
    console.print(f"Slack user [bold]{slack_user}[/] is no longer mapped.")


@slack_app.command("users")
def list_users() -> None:
    """List the Slack users mapped to accounts."""

    async def go() -> list[tuple[str, str, str]]:
        from storage import Database
        from storage.connectors import SlackUsers

        async with Database.from_settings(load_settings()) as db:
            users = SlackUsers(db.sessionmaker)
            found = []
            for record in await users.list():
                identity = await users.identity(record.slack_user_id)
                found.append((record.slack_user_id, record.account, identity[1] if identity else record.role))
            return found

    rows = run(go())
    if not rows:
        console.print("No Slack user is mapped; every Slack user gets KOMMANDANT_SLACK_DEFAULT_ROLE.")
        return
    from rich.table import Table

    table = Table("slack user", "account", "role")
    for row in rows:
        table.add_row(*row)
    console.print(table)
