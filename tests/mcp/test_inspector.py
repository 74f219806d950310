"""The MCP Inspector CLI (from the npm registry) lists and calls tools of `kommandant mcp` over stdio.

Install it once with ``npm install --prefix ~/.cache/kommandant-npm @modelcontextprotocol/inspector``;
without that, ``npx -y`` fetches it. Runs whenever ``CI=true``; off CI it skips without npm.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import func, select

from storage import Database
from storage.models import Memory
from tests.conftest import require_service
from tests.mcp.conftest import KOMMANDANT, server_env

NPM_PREFIX = Path(os.environ.get("KOMMANDANT_NPM_PREFIX", Path.home() / ".cache" / "kommandant-npm"))


def inspector() -> list[str]:
    installed = NPM_PREFIX / "node_modules" / ".bin" / "mcp-inspector"
    if installed.exists():
        return [str(installed)]
    if shutil.which("npx"):
        return ["npx", "-y", "@modelcontextprotocol/inspector"]
    require_service("The MCP Inspector", "neither it nor npx is installed (install Node.js and npm)")
    raise AssertionError("unreachable")


def run_inspector(database: Database, data_dir: Path, *method: str) -> dict[str, object]:
    env = server_env(database, data_dir)
    # The Inspector starts the server with a default environment of its own (its -e flags do not reach a
    # stdio server in --cli mode), so the server's settings are set by `env` in its command line: without
    # them it would run on the user's own data folder.
    settings = [f"{key}={value}" for key, value in env.items() if key.startswith("KOMMANDANT_")]
    done = subprocess.run(
        [*inspector(), "--cli", "env", *settings, KOMMANDANT, "mcp", *method],
        env={**os.environ, "NO_UPDATE_NOTIFIER": "1"},
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_inspector_lists_and_calls_tools(database: Database, tmp_path: Path) -> None:
    listed = run_inspector(database, tmp_path, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}  # type: ignore[attr-defined]
    assert {"ask", "memory_remember", "system_status", "memory_forget"} <= set(tools)
    assert tools["memory_remember"]["inputSchema"]["required"] == ["fact"]

    word = f"inspector{uuid.uuid4().hex[:6]}"
    called = run_inspector(
        database,
        tmp_path,
        *("--method", "tools/call", "--tool-name", "memory_remember"),
        *("--tool-arg", f"fact=my {word} is fine"),
    )
    assert called.get("isError") in (None, False)
    assert called["structuredContent"]["fact"]["fact"] == f"my {word} is fine"  # type: ignore[index]
    assert asyncio.run(_facts_with(database.url, word)) == 1, "the server did not use the test database"


async def _facts_with(url: str, word: str) -> int:
    async with Database(url, migrate=False) as db, db.sessionmaker() as session:
        found = await session.scalar(
            select(func.count()).select_from(Memory).where(Memory.content.contains(word))
        )
        return int(found or 0)
