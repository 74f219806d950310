"""Who sees which audit rows, and what the rows keep: a person (viewer or operator) reads only their own
rows through the chat and the CLI, an admin reads everyone's; private words (what to remember, what to
search for, what was recalled) reach the audit trail only as hashes or lengths, and the chain verifies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import text

from assistant.events import ApprovalRequired, ToolFinished, Turn
from assistant.runtime import Runtime
from embeddings import embedder_from_settings
from storage import Database
from storage.audit import AuditLog
from tests.test_cli import cli
from tools import private_digest

PIN = "8642"
PASSWORD = "hunter2"

_MACHINE_MADE = re.compile(
    r"[0-9a-f]{32,}"  # hashes, digests, call ids
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # approval ids
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d(?::?\d\d)?|Z)?"  # timestamps
)


def readable(dumped: str) -> str:
    """``dumped`` without the hex and digits machines made (a hash may contain "8642" by chance)."""
    return _MACHINE_MADE.sub("#", dumped)


async def turn(rt: Runtime, words: str, *, user: str, role: str, channel: str = "web") -> list[Any]:
    assert rt.kommandant is not None
    said = Turn(text=words, user=user, channel=channel, role=role)  # type: ignore[arg-type]
    return [e async for e in rt.kommandant.handle(said)]


def audit_rows(events: list[Any]) -> list[dict[str, Any]]:
    """The rows ``audit_recent`` returned in a turn."""
    [finished] = [e for e in events if isinstance(e, ToolFinished) and e.tool == "audit_recent"]
    assert finished.ok and finished.structured is not None, finished.text
    rows: list[dict[str, Any]] = finished.structured["rows"]
    return rows


async def owners(db: Database) -> dict[int, str]:
    """Every row's owner by seq, as stored."""
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT seq, coalesce(owner, actor) FROM audit_log"))).all()
    return {seq: owner for seq, owner in rows}


async def whole_trail(db: Database) -> str:
    """The whole audit_log table as text: every column of every row, less what ``readable`` drops."""
    async with db.engine.connect() as conn:
        dumped = await conn.scalar(text("SELECT coalesce(string_agg(a::text, E'\\n'), '') FROM audit_log a"))
    assert isinstance(dumped, str)
    return readable(dumped)


async def test_each_person_sees_only_their_own_rows_and_an_admin_sees_all(runtime: Runtime) -> None:
    db = runtime.services.database  # type: ignore[union-attr]
    await turn(runtime, "what's the status", user="vera", role="viewer")
    await turn(runtime, "what do you remember about me", user="vera", role="viewer")
    await turn(runtime, f"remember that my bank pin is {PIN}", user="otto", role="operator")
    await turn(runtime, f"search the knowledge base for {PASSWORD}", user="otto", role="operator")
    await turn(runtime, "what's the status", user="root", role="admin")

    for user, role in (("vera", "viewer"), ("otto", "operator")):
        before = await owners(db)
        events = await turn(runtime, "show the last 20 audit entries", user=user, role=role)
        seen = [row["seq"] for row in audit_rows(events)]
        assert seen == sorted((s for s, o in before.items() if o == user), reverse=True)[:20], (user, seen)
        assert seen and {before[s] for s in seen} == {user}
        assert {row["actor"] for row in audit_rows(events)} == {user}
        shown = json.dumps([e.text for e in events if isinstance(e, ToolFinished)])
        other = "otto" if user == "vera" else "vera"
        assert other not in shown and "root" not in shown

    before = await owners(db)
    events = await turn(runtime, "show the last 200 audit entries", user="root", role="admin")
    seen = [row["seq"] for row in audit_rows(events)]
    assert seen == sorted(before, reverse=True)
    assert {before[s] for s in seen} == {"vera", "otto", "root"}
    assert (await AuditLog(db.sessionmaker).verify()).ok


async def test_private_words_never_reach_the_audit_trail_in_clear(runtime: Runtime) -> None:
    assert runtime.kommandant is not None
    db = runtime.services.database  # type: ignore[union-attr]
    # Load the embedding model first: its first load on a busy machine can outlast this runtime's short
    # call deadline, and what is tested here is the audit trail, not loading speed.
    await embedder_from_settings(runtime.settings).embed(["warm up"])
    otto = {"user": "otto", "role": "operator"}
    remembered = await turn(runtime, f"remember that my bank pin is {PIN}", **otto)
    assert any(PIN in e.text for e in remembered if isinstance(e, ToolFinished))  # the person sees it
    recalled = await turn(runtime, "what is my bank pin", **otto)
    assert any(PIN in e.text for e in recalled if isinstance(e, ToolFinished))
    await turn(runtime, "what do you remember about me", **otto)
    await turn(runtime, f"search the knowledge base for {PASSWORD}", **otto)
    await turn(runtime, f"add a note saying the vault password is {PASSWORD}", user="root", role="admin")
    await turn(runtime, f"search the knowledge base for vault password {PASSWORD}", **otto)
    await _forget_with_approval(runtime, "forget my bank pin")
    await turn(runtime, "what's the status", **otto)

    trail = await whole_trail(db)
    for secret in (PIN, PASSWORD, "bank pin", "vault password"):
        assert secret not in trail, secret
    log = AuditLog(db.sessionmaker)
    assert (await log.verify()).ok
    rows = await log.tail(500)
    intents = {(r.tool, json.dumps(r.data["arguments"])) for r in rows if r.kind == "intent"}
    assert runtime.kommandant is not None
    key = runtime.kommandant.audit_key
    remembered = json.dumps({"fact": private_digest(f"my bank pin is {PIN}", key)})
    assert ("memory_remember", remembered) in intents
    turns = [r.data["text"] for r in rows if r.kind == "turn"]
    assert private_digest(f"remember that my bank pin is {PIN}", key) in turns  # checkable, not readable
    assert "what's the status" in turns  # words without private arguments stay readable
    results = [(r.tool, r.data["summary"]) for r in rows if r.kind == "tool_result"]
    private = {"memory_remember", "memory_recall", "memory_list", "memory_forget", "knowledge_search"}
    assert {tool for tool, _ in results} >= {*private, "knowledge_add", "system_status"}
    for tool, summary in results:
        assert summary.startswith("(private: ") == (tool in {*private, "knowledge_add"}), (tool, summary)


async def _forget_with_approval(runtime: Runtime, words: str) -> None:
    """A dangerous private command, approved by an admin elsewhere while the turn waits."""
    assert runtime.kommandant is not None
    asked: asyncio.Future[ApprovalRequired] = asyncio.get_running_loop().create_future()

    kommandant = runtime.kommandant

    async def run() -> list[Any]:
        events = []
        async for event in kommandant.handle(Turn(text=words, user="otto", channel="web", role="operator")):
            events.append(event)
            if isinstance(event, ApprovalRequired):
                asked.set_result(event)
        return events

    task = asyncio.create_task(run())
    approval = await asyncio.wait_for(asked, 10)
    await kommandant.decide(approval.approval_id, approve=True, user="root", role="admin", channel="web")
    events = await asyncio.wait_for(task, 15)
    [forgot] = [e for e in events if isinstance(e, ToolFinished)]
    assert forgot.ok and PIN in forgot.text


async def test_the_cli_shows_a_viewer_only_their_rows(db: Database, tmp_path: Path) -> None:
    env = {
        "KOMMANDANT_DATABASE_URL": db.url,
        "KOMMANDANT_DATA_DIR": str(tmp_path),
        "KOMMANDANT_LLM_MODEL": "",
    }
    for words, user, role in (
        ("what's the status", "vera", "viewer"),
        (f"remember that my bank pin is {PIN}", "otto", "operator"),
    ):
        done = cli("ask", words, "--json", "--user", user, "--role", role, env=env)
        assert done.returncode == 0, done.stderr
    shown = {}
    for user, role in (("vera", "viewer"), ("otto", "operator"), ("root", "admin")):
        done = cli("ask", "show the last 20 audit entries", "--json", "--user", user, "--role", role, env=env)
        assert done.returncode == 0, done.stderr
        [tool] = json.loads(done.stdout)["tools"]
        shown[user] = tool["structured"]["rows"]
    assert shown["vera"] and {row["actor"] for row in shown["vera"]} == {"vera"}
    assert shown["otto"] and {row["actor"] for row in shown["otto"]} == {"otto"}
    assert {row["actor"] for row in shown["root"]} == {"vera", "otto"}
    assert PIN not in readable(json.dumps(shown))
    assert PIN not in await whole_trail(db)


async def test_pending_approvals_are_listed_to_their_requester_and_admins(runtime: Runtime) -> None:
    """An operator's dangerous request waits; another operator does not see it, an admin does."""
    assert runtime.kommandant is not None
    kommandant = runtime.kommandant
    asked = asyncio.Event()

    async def request() -> None:
        turn = Turn(text="forget my bank pin", user="olga", channel="web", role="operator")
        async for event in kommandant.handle(turn):
            if isinstance(event, ApprovalRequired):
                asked.set()

    waiting = asyncio.create_task(request())
    try:
        await asyncio.wait_for(asked.wait(), 10)
        listed = {}
        for user, role in (("olga", "operator"), ("otto", "operator"), ("ada", "admin")):
            turn = Turn(text="show pending approvals", user=user, channel="web", role=role)
            done = [e async for e in kommandant.handle(turn) if isinstance(e, ToolFinished)]
            assert done and done[0].ok and done[0].structured is not None
            listed[user] = [a["requested_by"] for a in done[0].structured["approvals"]]
        assert listed == {"olga": ["olga"], "otto": [], "ada": ["olga"]}
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
