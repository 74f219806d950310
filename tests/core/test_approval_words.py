"""Approval cards in words: the owning agent's ``describe`` read tool says what a dangerous call would do,
as the person who asked sees it (a whole embedded Kommandant: real database, LocalBus, every agent)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from agents import BUILTIN_AGENTS
from agents.memory import forget_words
from agents.system import help_for, template_examples
from assistant.events import ApprovalRequired, ReplyDone, Turn
from assistant.runtime import Runtime
from settings import Settings
from storage import Database
from storage.audit import AuditLog
from storage.bots import BotConfig, BotRegistry
from tools.builtin.system import DescribeInput

SLEEPER = "import time\nwhile True: time.sleep(0.2)"


@pytest_asyncio.fixture(loop_scope="session")
async def runtime(db: Database, settings: Settings) -> AsyncIterator[Runtime]:
    configured = settings.model_copy(update={"call_timeout": 10.0, "bots_grace": 1.0, "llm_model": ""})
    async with Runtime(configured, agents=list(BUILTIN_AGENTS), database=db) as rt:
        yield rt


def who(user: str, role: str = "operator") -> dict[str, Any]:
    return {"user": user, "channel": "cli", "role": role}


async def said(rt: Runtime, text: str, user: str = "admin", role: str = "admin") -> str:
    assert rt.kommandant is not None
    events = [e async for e in rt.kommandant.handle(Turn(text=text, **who(user, role)))]
    return " ".join(e.text for e in events if isinstance(e, ReplyDone))


async def card(rt: Runtime, text: str, user: str) -> tuple[ApprovalRequired, str]:
    """Ask for a dangerous call as ``user``, take its approval and the card's words, then reject it."""
    assert rt.kommandant is not None
    kommandant = rt.kommandant
    asked: asyncio.Queue[ApprovalRequired] = asyncio.Queue()

    async def consume() -> None:
        async for event in kommandant.handle(Turn(text=text, **who(user))):
            if isinstance(event, ApprovalRequired):
                asked.put_nowait(event)

    task = asyncio.create_task(consume())
    try:
        approval = await asyncio.wait_for(asked.get(), 10)
        words = await kommandant.describe_call(
            approval.tool, approval.arguments, Turn(text="[describe]", **who(user))
        )
        await kommandant.decide(
            approval.approval_id, approve=False, user="admin", role="admin", channel="cli"
        )
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
    return approval, words


async def test_a_forget_card_names_the_callers_own_memories_only(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    await said(runtime, "remember that my editor is neovim", user="ann", role="operator")
    await said(runtime, "remember that my editor is emacs", user="bob", role="operator")
    approval, words = await card(runtime, "forget my editor", "ann")
    assert approval.tool == "memory_forget"
    assert words == "delete the memory 'your editor is neovim'"
    # The same call described for bob names his memory, never ann's; for carol, nothing matches.
    bob = await runtime.kommandant.describe_call(
        approval.tool, approval.arguments, Turn(text="x", **who("bob"))
    )
    assert "emacs" in bob and "neovim" not in bob
    carol = await runtime.kommandant.describe_call(
        approval.tool, approval.arguments, Turn(text="x", **who("carol"))
    )
    assert carol.startswith("delete nothing") and "neovim" not in carol and "emacs" not in carol
    # An admin looking at ann's approval is not shown the admin's own facts, nor ann's: generic words.
    admin = await runtime.kommandant.describe_call(
        approval.tool, approval.arguments, Turn(text="x", **who("boss", "admin")), requested_by="ann"
    )
    assert admin.startswith("forget (delete) remembered facts") and "neovim" not in admin
    # The memory is still there (describing deleted nothing); the audit keeps the description private.
    assert "neovim" in await said(runtime, "what is my editor", user="ann", role="operator")
    rows = await AuditLog(runtime.services.database.sessionmaker).tail(200)
    described = [r for r in rows if r.tool == "memory_describe"]
    assert described and not any(
        "neovim" in json.dumps(r.data) or "editor" in json.dumps(r.data) for r in described
    )


async def test_a_stop_card_names_the_process(runtime: Runtime, db: Database) -> None:
    await BotRegistry(db.sessionmaker).add(BotConfig(name="napper", command=(sys.executable, "-c", SLEEPER)))
    _, idle = await card(runtime, "stop the napper bot", "ann")
    assert idle.startswith("stop the bot napper, which is not running")
    assert "Started" in await said(runtime, "start the napper bot")
    approval, words = await card(runtime, "stop the napper bot", "ann")
    assert approval.tool == "bots_stop"
    assert words.startswith("stop the bot napper (pid ") and "running " in words
    _, unknown = await card(runtime, "stop the ghost bot", "ann")
    assert "no bot of that name" in unknown


async def test_a_delete_card_names_the_schedule_as_its_owner_sees_it(runtime: Runtime) -> None:
    assert runtime.kommandant is not None
    reply = await said(
        runtime,
        "create a schedule called nightly to start the backup bot every night at 3 am",
        user="ann",
        role="operator",
    )
    assert "nightly" in reply
    approval, words = await card(runtime, "delete the nightly schedule", "ann")
    assert approval.tool == "schedules_delete"
    assert words.startswith("delete the schedule 'nightly' (every day at 3:00, runs 'start the backup bot'")
    assert "; next run " in words
    # Another operator cannot see ann's schedule: the card says what the delete would find, nothing more.
    bob = await runtime.kommandant.describe_call(
        approval.tool, approval.arguments, Turn(text="x", **who("bob"))
    )
    assert bob == "delete the schedule 'nightly', which does not exist"


def test_many_memories_are_counted_and_describe_tools_are_never_offered() -> None:
    facts = [f"my key {n} is in drawer {n}" for n in range(5)]
    assert forget_words("key", facts) == (
        "delete the memories 'your key 0 is in drawer 0', 'your key 1 is in drawer 1', "
        "'your key 2 is in drawer 2' and 2 more"
    )
    from tools import builtin_catalog

    catalog = builtin_catalog()
    offered = {c.tool for a in help_for(catalog, "admin", template_examples()).agents for c in a.commands}
    describers = {t.name for t in catalog if issubclass(t.input_model, DescribeInput)}
    assert len(describers) == 3 and not describers & offered
