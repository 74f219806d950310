"""CLI: web chat accounts: ``kommandant users add|list|remove|passwd`` (issue 5)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from assistant.cli.console import console, fail, load_settings, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from storage.handover import Handover
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
    action: Callable[[WebAccountRepository], Awaitable[T]],
    audit: tuple[str, dict[str, str]] | None = None,
    end_sessions: tuple[str, dict[str, str]] | None = None,
) -> T:
    """Open the database, run ``action`` on the account table, end the web sessions ``end_sessions``
    names (why, and ``WebSessionRepository.revoke_many`` filters), and record ``audit`` (kind,
    data; with the number of sessions ended) if given."""
    from storage.web_accounts import WebAccountRepository

    return await _in_database(
        lambda sessionmaker: action(WebAccountRepository(sessionmaker)), audit, end_sessions
    )


async def _in_database(
    action: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
    audit: tuple[str, dict[str, str]] | None = None,
    end_sessions: tuple[str, dict[str, str]] | None = None,
) -> T:
    """``_with_accounts`` for an action that needs more than the account table."""
    from storage import Database
    from storage.audit import AuditLog
    from storage.web_sessions import WebSessionRepository

    async with Database.from_settings(load_settings()) as db:
        result = await action(db.sessionmaker)
        ended = None
        if end_sessions is not None:
            because, which = end_sessions
            ended = await WebSessionRepository(db.sessionmaker).revoke_many(because, **which)
        if audit is not None:
            kind, data = audit
            data = data if ended is None else {**data, "sessions_ended": str(ended)}
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
    take_local: Annotated[
        bool | None,
        typer.Option(
            "--take-local/--leave-local",
            help="First account only: move the local admin's chat threads, memories, reminders and "
            "schedules to it, or leave them with the local admin (default: asked; left when not asked).",
        ),
    ] = None,
) -> None:
    """Create a web chat account. The first one ends the auto-login of the local admin (its open
    sessions stop working within seconds) and can take over what the local admin had."""
    from storage.web_accounts import InvalidAccountError, validate_role, validate_username
    from storage.web_sessions import AUTO_PROVIDER

    try:
        validate_username(username)
        validate_role(role)
    except InvalidAccountError as err:
        fail(str(err))
    if take_local is None and not password_stdin and sys.stdin.isatty():
        asked = run(_in_database(_first_account_holdings))
        take_local = asked is not None and _ask_take_local(asked, username)
    secret = _read_password(password, password_stdin)

    async def create(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[Any, Handover | None, bool]:
        from storage.web_accounts import WebAccountRepository

        local = await _first_account_holdings(sessionmaker)
        record = await WebAccountRepository(sessionmaker).add(username, secret, role)
        if local is not None and take_local:
            local = await _hand_over(sessionmaker, record.username)
        return record, local, bool(take_local)

    try:
        record, local, moved = run(
            _in_database(
                create,
                ("account_added", {"username": username, "role": role}),
                ("an account exists: no more automatic login", {"provider": AUTO_PROVIDER}),
            )
        )
    except InvalidAccountError as err:
        fail(str(err))
    console.print(f"Added [bold]{record.username}[/] ({record.role}).", highlight=False)
    if local is None:
        return
    if moved:
        console.print(f"Moved the local admin's {local.describe()} to {record.username}.", highlight=False)
    else:
        console.print(
            f"The local admin's {local.describe()} stay with the local admin: {record.username} does not "
            "see them, and nobody can sign in as the local admin any more.",
            highlight=False,
        )


def _ask_take_local(local: Handover, username: str) -> bool:
    """Ask whether the first account takes over the local admin's things."""
    return bool(
        typer.confirm(
            f"The local admin (the automatic login) has {local.describe()}. Move them to {username}?",
            default=True,
        )
    )


async def _first_account_holdings(sessionmaker: async_sessionmaker[AsyncSession]) -> Handover | None:
    """What the local admin has, when no account exists yet and it has anything; else None."""
    from assistant.web.auth import LOCAL_USER
    from storage.handover import local_holdings
    from storage.web_accounts import WebAccountRepository

    if await WebAccountRepository(sessionmaker).count():
        return None
    held = await local_holdings(sessionmaker, LOCAL_USER)
    return None if held.empty else held


async def _hand_over(sessionmaker: async_sessionmaker[AsyncSession], username: str) -> Handover:
    """Move the local admin's things to ``username`` and audit it (counts only)."""
    from assistant.web.auth import LOCAL_USER
    from storage.audit import AuditLog
    from storage.handover import hand_over_local

    moved = await hand_over_local(sessionmaker, LOCAL_USER, username)
    data = {"username": username, **{k: str(v) for k, v in asdict(moved).items()}}
    await AuditLog(sessionmaker).append("local_admin_handed_over", actor="cli", channel="cli", data=data)
    return moved


@users_app.command("passwd")
def passwd(
    username: Annotated[str, typer.Argument(help="The account.")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set a new password for an account; its open web sessions stop working within seconds."""
    from storage.web_accounts import InvalidAccountError

    secret = _read_password(None, password_stdin)
    try:
        run(
            _with_accounts(
                lambda accounts: accounts.set_password(username, secret),
                ("account_password_changed", {"username": username}),
                ("password changed", {"username": username}),
            )
        )
    except InvalidAccountError as err:
        fail(str(err))
    console.print(f"Password of [bold]{username}[/] changed.", highlight=False)


@users_app.command("role")
def set_role(
    username: Annotated[str, typer.Argument(help="The account.")],
    role: Annotated[str, typer.Argument(help="admin, operator or viewer.")],
) -> None:
    """Give an account another role; its open web sessions stop working within seconds (sign in again)."""
    from storage.web_accounts import InvalidAccountError, validate_role

    try:
        validate_role(role)
    except InvalidAccountError as err:
        fail(str(err))
    record = run(
        _with_accounts(
            lambda accounts: accounts.set_role(username, role),
            ("account_role_changed", {"username": username, "role": role}),
            ("role changed", {"username": username}),
        )
    )
    console.print(f"[bold]{record.username}[/] is now {record.role}.", highlight=False)


@users_app.command("logout")
def logout(
    username: Annotated[str | None, typer.Argument(help="The account whose web logins end.")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="End every web login, of every account.")] = False,
) -> None:
    """End web logins (a lost laptop, a shared screen): within seconds they must sign in again."""
    if (username is None) == (not everyone):
        fail("Name one account, or give --all.")
    which = {} if everyone else {"username": str(username)}
    run(
        _with_accounts(
            _no_change,
            ("web_sessions_ended", {"username": username or "*"}),
            ("ended with kommandant users logout", which),
        )
    )
    console.print(f"Ended the web logins of {'every account' if everyone else username}.", highlight=False)


async def _no_change(accounts: WebAccountRepository) -> None:
    """``users logout`` leaves the accounts as they are: only their sessions end."""


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
    """Delete an account; that person's web sessions stop working within seconds.

    Their chat threads are kept unless ``--delete-threads`` is given (the command says how many).
    """
    threads = run(
        _with_accounts(
            lambda accounts: accounts.remove(username, delete_threads=delete_threads),
            ("account_removed", {"username": username, "threads_deleted": str(delete_threads).lower()}),
            ("account removed", {"username": username}),
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
