"""Web accounts without a browser: password hashing, login rules, the login secret, ``kommandant users``."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from assistant.cli.main import app
from assistant.web.auth import LOCAL_USER, SECRET_ENV, SECRET_FILE, WebAuth, ensure_auth_secret
from settings import Settings
from storage import Database
from storage.errors import ConflictError, NotFoundError
from storage.models import AuditRow, ChainlitThread, ChainlitUser
from storage.web_accounts import (
    InvalidAccountError,
    WebAccountRepository,
    hash_password,
    verify_password,
)

# --- password hashing ------------------------------------------------------------------------------


def test_hash_is_salted_scrypt_and_verifies_only_the_right_password() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt each time
    assert first.startswith("scrypt$32768$8$1$") and "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsE", first)
    assert not verify_password("", first)


@pytest.mark.parametrize("stored", ["", "plain-text", "md5$abc", "scrypt$x$8$1$AAAA$AAAA", "scrypt$1$2"])
def test_a_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert verify_password("anything at all", stored) is False


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_password_length_is_checked_with_a_sentence(password: str) -> None:
    with pytest.raises(InvalidAccountError, match="8 to 1024 characters"):
        hash_password(password)


# --- the login rules -------------------------------------------------------------------------------


def _auth(db: Database, tmp_path: Path, **overrides: Any) -> WebAuth:
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=db.url, amqp_url=None, **overrides)
    return WebAuth(settings, WebAccountRepository(db.sessionmaker))


async def test_auto_login_only_while_no_account_exists(db: Database, tmp_path: Path) -> None:
    auth = _auth(db, tmp_path)
    assert await auth.auto_login_active()
    local = await auth.header_login({"host": "127.0.0.1:8000"})
    assert local is not None and (local.user, local.role, local.provider) == (LOCAL_USER, "admin", "auto")
    assert await auth.current_role(LOCAL_USER) == "admin"

    await auth.accounts.add("alice", "alice-password", "operator")
    assert not await auth.auto_login_active()
    assert await auth.header_login({"host": "127.0.0.1:8000"}) is None
    assert await auth.current_role(LOCAL_USER) is None  # an open local session is refused at once


async def test_password_mode_never_auto_logs_in(db: Database, tmp_path: Path) -> None:
    auth = _auth(db, tmp_path, web_auth="password")
    assert not await auth.auto_login_active()
    assert await auth.header_login({"host": "127.0.0.1:8000"}) is None
    assert await auth.current_role(LOCAL_USER) is None


async def test_password_login_gives_the_accounts_role(db: Database, tmp_path: Path) -> None:
    auth = _auth(db, tmp_path)
    await auth.accounts.add("bob", "bob-password-1", "viewer")
    identity = await auth.password_login(" bob ", "bob-password-1")
    assert identity is not None and (identity.user, identity.role, identity.provider) == (
        "bob",
        "viewer",
        "password",
    )
    assert await auth.password_login("bob", "bob-password-2") is None
    assert await auth.password_login("nobody", "bob-password-1") is None
    assert await auth.password_login("x" * 5000, "y" * 5000) is None  # absurd input: refused, no error


async def test_header_and_oauth_need_an_existing_account(db: Database, tmp_path: Path) -> None:
    auth = _auth(db, tmp_path, web_auth_header="X-Forwarded-User")
    await auth.accounts.add("carol@example.org", "carol-password", "admin")
    by_header = await auth.header_login({"x-forwarded-user": "carol@example.org"})
    assert by_header is not None and (by_header.role, by_header.provider) == ("admin", "header")
    assert await auth.header_login({"x-forwarded-user": "mallory"}) is None
    by_oauth = await auth.oauth_login("carol@example.org", "github")
    assert by_oauth is not None and by_oauth.provider == "github"
    assert await auth.oauth_login("mallory@example.org", "github") is None


async def test_role_changes_and_removal_take_effect_at_the_next_turn(db: Database, tmp_path: Path) -> None:
    auth = _auth(db, tmp_path)
    await auth.accounts.add("dave", "dave-password", "admin")
    assert await auth.current_role("dave") == "admin"
    with pytest.raises(ConflictError, match="already an account named 'dave'"):
        await auth.accounts.add("dave", "other-password", "viewer")
    await auth.accounts.set_password("dave", "new-dave-password")
    assert await auth.password_login("dave", "dave-password") is None
    assert await auth.password_login("dave", "new-dave-password") is not None
    assert await auth.accounts.remove("dave") == 0
    assert await auth.current_role("dave") is None
    with pytest.raises(NotFoundError, match="no account named 'dave'"):
        await auth.accounts.remove("dave")


@pytest.mark.parametrize(
    ("username", "role", "message"),
    [("bad name", "admin", "not a valid user name"), ("eve", "root", "'root' is not a role")],
)
async def test_invalid_accounts_are_refused_with_a_sentence(
    db: Database, username: str, role: str, message: str
) -> None:
    with pytest.raises(InvalidAccountError, match=message):
        await WebAccountRepository(db.sessionmaker).add(username, "a-fine-password", role)


# --- the login secret ------------------------------------------------------------------------------


def test_login_secret_is_generated_once_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    settings = Settings(_env_file=None, data_dir=tmp_path, amqp_url=None)
    ensure_auth_secret(settings)
    secret = os.environ[SECRET_ENV]
    path = tmp_path / SECRET_FILE
    assert len(secret) >= 48 and path.read_text().strip() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.delenv(SECRET_ENV)
    ensure_auth_secret(settings)
    assert os.environ[SECRET_ENV] == secret  # the same after a restart: logins survive it

    chosen = Settings(_env_file=None, data_dir=tmp_path, amqp_url=None, web_auth_secret="chosen-secret")
    ensure_auth_secret(chosen)
    assert os.environ[SECRET_ENV] == "chosen-secret"


# --- kommandant users ------------------------------------------------------------------------------


@pytest.fixture
def users_cli(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KOMMANDANT_DATABASE_URL", db.url)
    monkeypatch.setenv("KOMMANDANT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


async def _users(runner: CliRunner, *args: str, stdin: str | None = None) -> Result:
    # The command runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(runner.invoke, app, ["users", *args], input=stdin)


async def test_users_add_list_passwd_remove(db: Database, users_cli: CliRunner) -> None:
    result = await _users(users_cli, "list")
    assert result.exit_code == 0 and "No accounts" in result.output

    result = await _users(
        users_cli, "add", "alice", "--role", "admin", "--password-stdin", stdin="alice-pw-1\n"
    )
    assert result.exit_code == 0, result.output
    assert "Added alice (admin)." in result.output and "alice-pw-1" not in result.output
    result = await _users(users_cli, "add", "bob", "--password-stdin", stdin="bob-password\n")
    assert result.exit_code == 0, result.output

    result = await _users(users_cli, "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(a["username"], a["role"]) for a in listed] == [("alice", "admin"), ("bob", "operator")]
    assert all("password" not in key for account in listed for key in account)

    result = await _users(users_cli, "passwd", "bob", "--password-stdin", stdin="bob-new-password\n")
    assert result.exit_code == 0, result.output
    accounts = WebAccountRepository(db.sessionmaker)
    assert await accounts.authenticate("bob", "bob-new-password") is not None

    result = await _users(users_cli, "remove", "bob")
    assert result.exit_code == 0 and "Removed bob." in result.output
    assert await accounts.get("bob") is None
    async with db.sessionmaker() as session:
        kinds = (await session.scalars(select(AuditRow.kind).order_by(AuditRow.seq))).all()
        rows = " ".join(str(r.data) for r in (await session.scalars(select(AuditRow))).all())
    assert kinds == ["account_added", "account_added", "account_password_changed", "account_removed"]
    assert "pw" not in rows and "password'" not in rows  # no secret in the audit trail


async def test_users_errors_are_sentences(users_cli: CliRunner) -> None:
    result = await _users(
        users_cli, "add", "alice", "--role", "root", "--password-stdin", stdin="long-enough\n"
    )
    assert result.exit_code != 0 and "'root' is not a role" in result.output
    result = await _users(users_cli, "add", "alice", "--password-stdin", stdin="short\n")
    assert result.exit_code != 0 and "8 to 1024 characters" in result.output
    await _users(users_cli, "add", "alice", "--password-stdin", stdin="long-enough\n")
    result = await _users(users_cli, "add", "alice", "--password-stdin", stdin="long-enough\n")
    assert result.exit_code != 0 and "already an account named 'alice'" in result.output
    result = await _users(users_cli, "remove", "nobody")
    assert result.exit_code != 0 and "no account named 'nobody'" in result.output
    assert "Traceback" not in result.output


async def _chainlit_threads(db: Database, user: str, count: int) -> None:
    async with db.sessionmaker() as session, session.begin():
        person = ChainlitUser(id=uuid.uuid4(), identifier=user, metadata_={})
        session.add(person)
        await session.flush()
        for i in range(count):
            session.add(
                ChainlitThread(id=uuid.uuid4(), name=f"chat {i}", user_id=person.id, user_identifier=user)
            )


async def _thread_count(db: Database, user: str) -> int:
    async with db.sessionmaker() as session:
        owned = ChainlitThread.user_identifier == user
        return int(await session.scalar(select(func.count()).where(owned)) or 0)


async def test_users_remove_keeps_threads_unless_asked(db: Database, users_cli: CliRunner) -> None:
    for name in ("kept", "gone"):
        await _users(users_cli, "add", name, "--password-stdin", stdin="long-enough\n")
        await _chainlit_threads(db, name, 2)

    result = await _users(users_cli, "remove", "kept")
    assert result.exit_code == 0, result.output
    assert "Kept 2 chat threads" in result.output and "--delete-threads" in result.output
    assert await _thread_count(db, "kept") == 2

    result = await _users(users_cli, "remove", "gone", "--delete-threads")
    assert result.exit_code == 0, result.output
    assert "Deleted 2 chat threads." in result.output
    assert await _thread_count(db, "gone") == 0
    assert await _thread_count(db, "kept") == 2  # only that person's


async def _local_memory(db: Database, content: str) -> None:
    from storage.models import Memory

    async with db.sessionmaker() as session, session.begin():
        session.add(Memory(user_id=LOCAL_USER, kind="semantic", content=content, content_hash=content))


async def _memory_owners(db: Database) -> list[str]:
    from storage.models import Memory

    async with db.sessionmaker() as session:
        return list((await session.scalars(select(Memory.user_id))).all())


async def test_the_first_account_takes_the_local_admins_things_when_asked(
    db: Database, users_cli: CliRunner
) -> None:
    await _chainlit_threads(db, LOCAL_USER, 2)
    await _local_memory(db, "my editor is neovim")
    result = await _users(
        users_cli,
        "add",
        "alice",
        "--role",
        "admin",
        "--take-local",
        "--password-stdin",
        stdin="long-enough\n",
    )
    assert result.exit_code == 0, result.output
    assert "Moved the local admin's 2 chat threads and 1 memory to alice." in result.output
    assert await _thread_count(db, "alice") == 2 and await _thread_count(db, LOCAL_USER) == 0
    assert await _memory_owners(db) == ["alice"]
    async with db.sessionmaker() as session:  # Chainlit finds the threads through alice's user row
        person = await session.scalar(select(ChainlitUser).where(ChainlitUser.identifier == "alice"))
        assert person is not None
        owners = (await session.scalars(select(ChainlitThread.user_id))).all()
        assert set(owners) == {person.id}
        kinds = (await session.scalars(select(AuditRow.kind))).all()
    assert "local_admin_handed_over" in kinds


async def test_the_first_account_leaves_the_local_admins_things_and_says_so(
    db: Database, users_cli: CliRunner
) -> None:
    await _chainlit_threads(db, LOCAL_USER, 1)
    await _local_memory(db, "the door code is 4711")
    # Not asked (the password comes on stdin, so no question can be answered): left, and said so.
    result = await _users(users_cli, "add", "alice", "--password-stdin", stdin="long-enough\n")
    assert result.exit_code == 0, result.output
    assert "The local admin's 1 chat thread and 1 memory stay with the local admin" in result.output
    assert await _thread_count(db, LOCAL_USER) == 1 and await _memory_owners(db) == [LOCAL_USER]
