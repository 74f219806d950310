"""CLI: web chat accounts: ``kommandant users add|list|remove|passwd`` (issue 5)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from assistant.cli.console import console, fail, load_settings, run

if TYPE_CHECKING:
    from storage.web_accounts import WebAccountRepository

T = TypeVar("T")

users_app = typer.Typer(
    help="Web chat accounts. With none, the embedded default signs everyone in as the local admin.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
    app.add_typer(users_app, name="users")


async def _with_accounts(
    action: Callable[[WebAccountRepository], Awaitable[T]], audit: tuple[str, dict[str, str]] | None = None
) -> T:
    """Open the database, run ``action`` on the account table, and record ``audit`` (kind, data) if given."""
    from storage import Database
    from storage.audit import AuditLog
    from storage.web_accounts import WebAccountRepository

    async with Database.from_settings(load_settings()) as db:
        result = await action(WebAccountRepository(db.sessionmaker))
        if audit is not None:
            kind, data = audit
            await AuditLog(db.sessionmaker).append(kind, actor="cli", channel="cli", data=data)
        return result


def _read_password(given: str | None, stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if given is not None:
        return given
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Login name (letters, digits, . _ - @).")],
    role: Annotated[str, typer.Option(help="admin, operator or viewer.")] = "operator",
    password: Annotated[
        str | None, typer.Option(help="The password (default: asked for, hidden). Prefer --password-stdin.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Create a web chat account. The first one ends the auto-login of the local admin."""
    from storage.web_accounts import InvalidAccountError, validate_role, validate_username

    try:
        validate_username(username)
        validate_role(role)
    except InvalidAccountError as err:
        fail(str(err))
    secret = _read_password(password, password_stdin)
    try:
        record = run(
            _with_accounts(
                lambda accounts: accounts.add(username, secret, role),
                ("account_added", {"username": username, "role": role}),
            )
        )
    except InvalidAccountError as err:
        fail(str(err))
    console.print(f"Added [bold]{record.username}[/] ({record.role}).", highlight=False)


@users_app.command("passwd")
def passwd(
    username: Annotated[str, typer.Argument(help="The account.")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set a new password for an account."""
    from storage.web_accounts import InvalidAccountError

    secret = _read_password(None, password_stdin)
    try:
        run(
            _with_accounts(
                lambda accounts: accounts.set_password(username, secret),
                ("account_password_changed", {"username": username}),
            )
        )
    except InvalidAccountError as err:
        fail(str(err))
    console.print(f"Password of [bold]{username}[/] changed.", highlight=False)


@users_app.command("list")
def list_users(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array of {username, role, created_at}.")
    ] = False,
) -> None:
    """Show the accounts and their roles."""
    records = run(_with_accounts(lambda accounts: accounts.list()))
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records]))
        return
    if not records:
        console.print(
            "No accounts: the web chat signs everyone in as the local admin (KOMMANDANT_WEB_AUTH=auto)."
        )
        return
    from rich.table import Table

    table = Table("user", "role", "created")
    for r in records:
        table.add_row(r.username, r.role, f"{r.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@users_app.command("remove")
def remove(
    username: Annotated[str, typer.Argument(help="The account to delete.")],
    delete_threads: Annotated[
        bool, typer.Option(help="Also delete this person's chat threads (kept by default).")
    ] = False,
) -> None:
    """Delete an account; open chats of that person stop working at their next message.

    Their chat threads are kept unless ``--delete-threads`` is given (the command says how many).
    """
    threads = run(
        _with_accounts(
            lambda accounts: accounts.remove(username, delete_threads=delete_threads),
            ("account_removed", {"username": username, "threads_deleted": str(delete_threads).lower()}),
        )
    )
    console.print(f"Removed [bold]{username}[/].", highlight=False)
    if delete_threads:
        console.print(f"Deleted {_threads(threads)}.", highlight=False)
    elif threads:
        console.print(
            f"Kept {_threads(threads)} (an account added again as {username} sees them); "
            "use --delete-threads to delete them.",
            highlight=False,
        )


def _threads(count: int) -> str:
    return f"{count} chat thread" + ("" if count == 1 else "s")
