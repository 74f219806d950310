"""Fail fast when nobody serves an agent: on both buses a call says so after a short grace period (not the
whole call timeout), names the agent and how to start it; a worker that appears within the grace serves it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from assistant.events import Turn
from assistant.result import collect
from assistant.runtime import Runtime
from bus import NoWorker, RabbitBus, ToolCall, ToolResult
from settings import Settings
from storage import Database
from tests.bus.conftest import Network

GRACE = 1.0


async def echo(call: ToolCall) -> ToolResult:
    return ToolResult.ok(call.call_id, text=f"echo {call.arguments['text']}")


async def test_call_to_an_agent_nobody_serves_fails_after_the_grace(network: Network) -> None:
    network.options["no_worker_grace"] = GRACE
    bus = await network.bus()
    started = time.perf_counter()

    with pytest.raises(NoWorker) as caught:
        await bus.call("ghost", ToolCall.create("ghost_haunt", {"text": "boo"}, timeout=30))

    elapsed = time.perf_counter() - started
    assert GRACE * 0.9 <= elapsed < GRACE + 1.5  # the grace period, not the 30 s call timeout
    assert caught.value.agent == "ghost"
    assert "ghost agent" in str(caught.value) and "`kommandant worker ghost`" in str(caught.value)


async def test_a_worker_started_within_the_grace_serves_the_call(network: Network) -> None:
    network.options["no_worker_grace"] = GRACE
    bus = await network.bus()
    pending = asyncio.create_task(bus.call("late", ToolCall.create("late_say", {"text": "hi"}, timeout=30)))
    await asyncio.sleep(GRACE / 3)
    assert not pending.done()  # still waiting for a worker, not failed at once

    await (await network.bus()).serve("late", echo)

    assert (await pending).text == "echo hi"
    # Served now: the next call goes straight through (the positive answer is remembered briefly).
    started = time.perf_counter()
    assert (await bus.call("late", ToolCall.create("late_say", {"text": "again"}, timeout=5))).text == (
        "echo again"
    )
    assert time.perf_counter() - started < GRACE / 2


async def test_a_stopped_worker_leaves_the_agent_unserved(network: Network) -> None:
    network.options["no_worker_grace"] = GRACE
    bus = await network.bus()
    if isinstance(bus, RabbitBus):
        bus.served_ttl = 0.1  # how long a seen consumer is remembered (2 s by default)
    serving = await (await network.bus()).serve("gone", echo)
    assert (await bus.call("gone", ToolCall.create("gone_say", {"text": "1"}, timeout=5))).text == "echo 1"
    await serving.stop()
    await asyncio.sleep(0.2)

    with pytest.raises(NoWorker, match="gone agent"):
        await bus.call("gone", ToolCall.create("gone_say", {"text": "2"}, timeout=30))


async def test_the_kommandant_replies_which_agent_to_start(db: Database, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=db.url, amqp_url=None, llm_model="",
        no_worker_grace=0.3,
    )  # fmt: skip
    async with Runtime(settings, agents=["system"], database=db) as rt:  # no memory agent here
        assert rt.kommandant is not None
        started = time.perf_counter()
        turn = Turn(text="remember that the printer is on floor 3", user="ana", channel="cli", role="admin")
        result = await collect(rt.kommandant.handle(turn))

    assert time.perf_counter() - started < 5
    assert [t.tool for t in result.tools] == ["memory_remember"]
    assert "The memory agent is not running" in result.reply
    assert "`kommandant worker memory`" in result.reply
