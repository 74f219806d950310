"""``kommandant bus dlq list|replay|purge`` against the real broker."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from assistant.cli.bus import app
from bus import Bus, ToolCall, ToolResult
from tests.bus.conftest import Network, eventually

pytestmark = pytest.mark.rabbit


@pytest.fixture
def bus_kind() -> str:
    return "rabbit"


async def cli(network: Network, *args: str) -> tuple[int, str]:
    env = {"KOMMANDANT_AMQP_URL": network.url or "", "KOMMANDANT_BUS_PREFIX": network.prefix}
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return result.exit_code, result.output


async def test_dlq_list_replay_purge(bus: Bus, network: Network) -> None:
    healthy = False

    async def sometimes(call: ToolCall) -> ToolResult:
        if not healthy:
            raise RuntimeError("upstream is down")
        return ToolResult.ok(call.call_id, text="ok")

    await bus.serve("ops", sometimes)
    calls = [ToolCall.create("ops_run", {"i": i}, timeout=5) for i in range(2)]
    for call in calls:
        await bus.call("ops", call)
    await bus.enqueue("ops", b"garbage", message_id="junk-1")
    await eventually(lambda: _count(bus, 3))

    code, out = await cli(network, "dlq", "list", "--json")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["id"] for r in rows} == {calls[0].call_id, calls[1].call_id, "junk-1"}
    assert {r["reason"] for r in rows if r["id"] != "junk-1"} == {
        "failed after 3 attempts: RuntimeError: upstream is down"
    }

    code, out = await cli(network, "dlq", "list")
    assert code == 0 and "ops_run" in out and "(unreadable)" in out

    healthy = True
    code, out = await cli(network, "dlq", "replay", calls[0].call_id)
    assert code == 0 and "Replayed 1 dead letter." in out
    assert await eventually(lambda: network.store.get(calls[0].idempotency_key))

    code, out = await cli(network, "dlq", "replay", "--all")
    assert code == 0 and "Replayed 1 dead letter." in out  # the garbage is not a call: it stays
    code, out = await cli(network, "dlq", "purge", "--all", "--yes")
    assert code == 0 and "Deleted 1 dead letter." in out
    assert await bus.dead_letters() == []

    code, out = await cli(network, "dlq", "purge")
    assert code != 0 and "--all" in out


async def _count(bus: Bus, n: int) -> bool:
    return len(await bus.dead_letters()) >= n


def test_without_a_broker_the_cli_says_why() -> None:
    result = CliRunner().invoke(app, ["dlq", "list"], env={"KOMMANDANT_AMQP_URL": ""})
    assert result.exit_code == 2
    assert "KOMMANDANT_AMQP_URL is unset" in result.output
