"""``kommandant schedules list|show|enable|disable|history`` on the real database, through the tools."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from assistant.cli.main import app
from storage import Database
from tests.scheduler.conftest import TICK, execute, rows


@pytest.fixture
def env(db: Database, tmp_path: Path) -> dict[str, str]:
    return {
        "KOMMANDANT_DATABASE_URL": db.url,
        "KOMMANDANT_DATA_DIR": str(tmp_path),
        "KOMMANDANT_LLM_MODEL": "",
        "KOMMANDANT_AMQP_URL": "",
    }


async def test_the_schedules_commands(db: Database, env: dict[str, str]) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    await execute(
        db,
        "INSERT INTO schedules (id, name, target, every_seconds, timezone, owner, owner_role, channel,"
        " enabled, next_run_at, intents) VALUES (gen_random_uuid(), 'ticker', 'note a tick', 3600,"
        " 'Europe/Copenhagen', 'ann', 'operator', 'cli', true, :soon, CAST(:intents AS jsonb))",
        soon=soon,
        intents=json.dumps([TICK]),
    )
    runner = CliRunner()

    async def invoke(*args: str) -> Result:  # in a thread: each command runs its own event loop
        return await asyncio.to_thread(runner.invoke, app, list(args), env=env)

    async def kommandant(*args: str) -> str:
        result = await invoke(*args)
        assert result.exit_code == 0, result.output
        return result.stdout  # the log goes to stderr

    listed = json.loads(await kommandant("schedules", "list", "--json"))
    assert [s["name"] for s in listed["schedules"]] == ["ticker"]
    assert datetime.fromisoformat(listed["schedules"][0]["next_run_at"]) == soon
    shown = json.loads(await kommandant("schedules", "show", "ticker"))
    assert shown["command"] == [TICK] and shown["timezone"] == "Europe/Copenhagen"
    assert "(disabled)" in await kommandant("schedules", "disable", "ticker")
    assert "(disabled)" not in await kommandant("schedules", "enable", "ticker")
    assert "has not run yet" in await kommandant("schedules", "history", "ticker")
    (row,) = await rows(db, "SELECT enabled, next_run_at FROM schedules")
    assert row.enabled and row.next_run_at > soon - timedelta(hours=1)
    missing = await invoke("schedules", "history", "nothing")
    assert missing.exit_code == 1 and "no schedule called" in missing.output
    viewer = await invoke("schedules", "disable", "ticker", "--role", "viewer")
    assert viewer.exit_code == 1 and "may not" in viewer.output
