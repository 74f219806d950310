"""``Bus.queue_depths`` on LocalBus and RabbitBus: calls waiting for an agent nobody serves are counted."""

from __future__ import annotations

from bus import Bus, ToolCall, ToolResult
from bus.messages import encode
from tests.bus.conftest import Network, eventually


async def test_waiting_calls_are_counted_per_agent_and_drop_once_served(bus: Bus, network: Network) -> None:
    for _ in range(3):
        call = ToolCall.create("idle_tool", {}, timeout=30)
        # Nobody serves 'idle': queue the calls as a replay does, so they wait on its queue.
        await bus.enqueue("idle", encode(call), message_id=call.call_id)

    async def three_waiting() -> dict[str, int]:
        depths = await bus.queue_depths(["idle", "nobody"])
        return depths if depths["idle"] == 3 else {}

    assert await eventually(three_waiting) == {"idle": 3, "nobody": 0}

    async def done(call: ToolCall) -> ToolResult:
        return ToolResult.ok(call.call_id, text="done")

    await (await network.bus()).serve("idle", done)

    async def drained() -> bool:
        return (await bus.queue_depths(["idle"])) == {"idle": 0}

    assert await eventually(drained)
