"""The bus contract, run against LocalBus and RabbitBus alike."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bus import (
    Bus,
    BusUnavailable,
    CallTimeout,
    DeadLetter,
    LocalBus,
    MessageTooLarge,
    PermanentError,
    ToolCall,
    ToolResult,
)
from bus.messages import encode
from tests.bus.conftest import Network, eventually


async def echo(call: ToolCall) -> ToolResult:
    return ToolResult.ok(call.call_id, text=f"echo {call.arguments['text']}", structured={"n": call.attempt})


async def wait_for_dead_letters(bus: Bus, count: int) -> list[DeadLetter]:
    async def enough() -> list[DeadLetter]:
        letters = await bus.dead_letters()
        return letters if len(letters) >= count else []

    return await eventually(enough)


async def test_round_trip(bus: Bus, network: Network) -> None:
    worker = await network.bus()
    await worker.serve("echo", echo)
    call = ToolCall.create("echo_say", {"text": "hi"}, timeout=5, user="ana", thread="t1")

    result = await bus.call("echo", call)

    assert result.call_id == call.call_id
    assert result.text == "echo hi"
    assert result.result.structuredContent == {"n": 1}
    assert result.agent == "echo"
    assert not result.is_error and not result.replayed


async def test_handler_error_result_comes_back_as_is(bus: Bus) -> None:
    async def refuse(call: ToolCall) -> ToolResult:
        return ToolResult.error(call.call_id, "No bot named zed.")

    await bus.serve("bots", refuse)
    result = await bus.call("bots", ToolCall.create("bots_start", {"name": "zed"}, timeout=5))

    assert result.is_error and result.text == "No bot named zed."
    assert await bus.dead_letters() == []


async def test_deadline_expiry_raises_call_timeout_and_cancels_the_handler(
    bus: Bus, network: Network
) -> None:
    finished = asyncio.Event()

    async def slow(call: ToolCall) -> ToolResult:
        await asyncio.sleep(2)
        finished.set()
        return ToolResult.ok(call.call_id, text="late")

    await (await network.bus()).serve("slow", slow)
    with pytest.raises(CallTimeout, match=r"slow_tool on agent slow did not answer before its deadline"):
        await bus.call("slow", ToolCall.create("slow_tool", {}, timeout=0.3))

    letters = await wait_for_dead_letters(bus, 1)
    assert "deadline passed while it was running" in letters[0].reason
    assert not finished.is_set()


async def test_expired_call_is_not_executed(bus: Bus, network: Network) -> None:
    ran: list[str] = []

    async def record(call: ToolCall) -> ToolResult:
        ran.append(call.call_id)
        return ToolResult.ok(call.call_id, text="ran")

    call = ToolCall.create("late_tool", {}, timeout=0.2)
    # Nobody serves 'late' yet: a call() would fail fast (NoWorker), so queue the call as a replay does.
    await bus.enqueue("late", encode(call), message_id=call.call_id)
    await asyncio.sleep(0.3)

    await (await network.bus()).serve("late", record)
    letters = await wait_for_dead_letters(bus, 1)

    assert ran == []
    assert letters[0].id == call.call_id
    assert "expired" in letters[0].reason
    assert letters[0].agent == "late"


async def test_timeout_argument_shortens_the_deadline(bus: Bus) -> None:
    async def slow(call: ToolCall) -> ToolResult:
        await asyncio.sleep(1)
        return ToolResult.ok(call.call_id, text="late")

    await bus.serve("slow2", slow)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CallTimeout):
        await bus.call("slow2", ToolCall.create("slow_tool", {}, timeout=30), timeout=0.2)
    assert loop.time() - started < 0.8


async def test_retry_then_dead_letter_with_the_reason(bus: Bus, network: Network) -> None:
    attempts: list[int] = []

    async def broken(call: ToolCall) -> ToolResult:
        attempts.append(call.attempt)
        raise RuntimeError("disk on fire")

    await (await network.bus()).serve("flaky", broken)
    call = ToolCall.create("flaky_tool", {"x": 1}, timeout=5)

    result = await bus.call("flaky", call)

    assert attempts == [1, 2, 3]  # retries=2 after the first attempt
    assert result.is_error and result.call_id == call.call_id
    assert "disk on fire" in result.text and "3 attempt" in result.text
    [letter] = await wait_for_dead_letters(bus, 1)
    assert letter.id == call.call_id and letter.agent == "flaky" and letter.attempts == 3
    assert letter.reason == "failed after 3 attempts: RuntimeError: disk on fire"
    assert letter.call is not None and letter.call.arguments == {"x": 1}


async def test_retry_then_success(bus: Bus) -> None:
    attempts: list[int] = []

    async def wobbly(call: ToolCall) -> ToolResult:
        attempts.append(call.attempt)
        if call.attempt < 3:
            raise ConnectionError("try again")
        return ToolResult.ok(call.call_id, text="fine")

    await bus.serve("wobbly", wobbly)
    result = await bus.call("wobbly", ToolCall.create("wobbly_tool", {}, timeout=5))

    assert result.text == "fine" and attempts == [1, 2, 3]
    assert await bus.dead_letters() == []


async def test_permanent_error_is_dead_lettered_at_once(bus: Bus) -> None:
    attempts: list[int] = []

    async def hopeless(call: ToolCall) -> ToolResult:
        attempts.append(call.attempt)
        raise PermanentError("the file does not exist")

    await bus.serve("perm", hopeless)
    result = await bus.call("perm", ToolCall.create("perm_tool", {}, timeout=5))

    assert attempts == [1]
    assert result.is_error and "the file does not exist" in result.text
    [letter] = await wait_for_dead_letters(bus, 1)
    assert letter.reason == "permanent error: the file does not exist"


async def test_poison_message_goes_to_the_dlq(bus: Bus) -> None:
    seen: list[str] = []

    async def record(call: ToolCall) -> ToolResult:
        seen.append(call.call_id)
        return ToolResult.ok(call.call_id, text="ok")

    await bus.serve("poisoned", record)
    await bus.enqueue("poisoned", b"\x00not json at all", message_id="m-poison")
    await bus.enqueue("poisoned", b'{"call_id": "x"}', message_id="m-incomplete")

    letters = await wait_for_dead_letters(bus, 2)

    assert seen == []
    by_id = {letter.id: letter for letter in letters}
    assert by_id["m-poison"].reason.startswith("poison: not a valid tool call")
    assert by_id["m-poison"].call is None and by_id["m-poison"].body_preview
    assert "params" in by_id["m-incomplete"].reason or "deadline" in by_id["m-incomplete"].reason
    assert await bus.replay() == 0  # bodies that are not calls stay where they are
    assert len(await bus.dead_letters()) == 2


async def test_competing_consumers_share_load(bus: Bus, network: Network) -> None:
    served: Counter[str] = Counter()

    def worker(name: str):
        async def handle(call: ToolCall) -> ToolResult:
            served[name] += 1
            await asyncio.sleep(0.02)
            return ToolResult.ok(call.call_id, text=name)

        return handle

    await (await network.bus()).serve("shared", worker("a"), concurrency=1)
    await (await network.bus()).serve("shared", worker("b"), concurrency=1)
    calls = [ToolCall.create("shared_tool", {}, timeout=10) for _ in range(20)]

    results = await asyncio.gather(*(bus.call("shared", c) for c in calls))

    assert sorted(r.call_id for r in results) == sorted(c.call_id for c in calls)
    assert served["a"] + served["b"] == 20
    assert served["a"] >= 5 and served["b"] >= 5, served


async def test_events_fan_out_by_pattern(bus: Bus, network: Network) -> None:
    other = await network.bus()
    async with (
        bus.subscribe("tool.*") as one_word,
        other.subscribe("tool.#") as any_words,
        other.subscribe("heartbeat.*") as heartbeats,
    ):
        await bus.publish("tool.finished", {"tool": "memory_remember", "ok": True})
        await bus.publish("tool.memory.finished", {"tool": "memory_remember"})
        await other.publish("heartbeat.memory", {"agent": "memory"})

        first = await one_word.get(timeout=3)
        assert (first.topic, first.payload) == ("tool.finished", {"tool": "memory_remember", "ok": True})
        assert [(await any_words.get(timeout=3)).topic for _ in range(2)] == [
            "tool.finished",
            "tool.memory.finished",
        ]
        assert (await heartbeats.get(timeout=3)).payload == {"agent": "memory"}
        with pytest.raises(TimeoutError):
            await one_word.get(timeout=0.2)  # 'tool.*' is one word: not tool.memory.finished


async def test_idempotent_redelivery_returns_the_stored_result(bus: Bus, network: Network) -> None:
    effects: list[str] = []

    async def remember(call: ToolCall) -> ToolResult:
        effects.append(call.arguments["fact"])
        return ToolResult.ok(call.call_id, text=f"remembered #{len(effects)}")

    await (await network.bus()).serve("memory", remember)
    first = ToolCall.create("memory_remember", {"fact": "tea"}, timeout=5, idempotency_key="turn-7")
    again = ToolCall.create("memory_remember", {"fact": "tea"}, timeout=5, idempotency_key="turn-7")

    one = await bus.call("memory", first)
    two = await bus.call("memory", again)

    assert effects == ["tea"]
    assert one.text == two.text == "remembered #1"
    assert two.call_id == again.call_id and two.replayed and not one.replayed
    assert await network.store.get("turn-7") is not None


async def test_calls_without_side_effects_run_again_and_are_not_stored(bus: Bus, network: Network) -> None:
    runs: list[str] = []

    async def recall(call: ToolCall) -> ToolResult:
        runs.append(call.call_id)
        return ToolResult.ok(call.call_id, text=f"run #{len(runs)}")

    await (await network.bus()).serve("memory", recall)
    calls = [
        ToolCall.create(
            "memory_recall", {"query": "tea"}, timeout=5, idempotency_key="read-1", side_effects=False
        )
        for _ in range(2)
    ]
    results = [await bus.call("memory", call) for call in calls]

    assert [r.text for r in results] == ["run #1", "run #2"]
    assert not any(r.replayed for r in results)
    assert await network.store.get("read-1") is None


async def test_call_too_large_is_refused_before_sending(bus: Bus, network: Network) -> None:
    small = await network.bus(max_message_bytes=2_000) if network.kind == "rabbit" else None
    target = small or LocalBus(max_message_bytes=2_000)
    if isinstance(target, LocalBus):
        await target.start()
    with pytest.raises(
        MessageTooLarge, match=r"The ToolCall for big_tool is [\d,]+ bytes, more than .* 2,000"
    ):
        await target.call("big", ToolCall.create("big_tool", {"blob": "x" * 5_000}, timeout=1))
    with pytest.raises(MessageTooLarge):
        await target.publish("big.event", {"blob": "x" * 5_000})


async def test_result_too_large_becomes_an_error_result(network: Network) -> None:
    bus = await network.bus(max_message_bytes=2_000)

    async def bloated(call: ToolCall) -> ToolResult:
        return ToolResult.ok(call.call_id, text="y" * 5_000)

    await bus.serve("bloat", bloated)
    result = await bus.call("bloat", ToolCall.create("bloat_tool", {}, timeout=5))
    assert result.is_error and "more than the bus limit" in result.text


async def test_stop_drains_calls_under_way(bus: Bus, network: Network) -> None:
    started = asyncio.Event()

    async def slowish(call: ToolCall) -> ToolResult:
        started.set()
        await asyncio.sleep(0.3)
        return ToolResult.ok(call.call_id, text="done")

    serving = await (await network.bus()).serve("drain", slowish)
    pending = asyncio.create_task(bus.call("drain", ToolCall.create("drain_tool", {}, timeout=5)))
    await started.wait()
    await serving.stop(drain=True)

    assert (await pending).text == "done"
    later = asyncio.create_task(bus.call("drain", ToolCall.create("drain_tool", {}, timeout=5)))
    await asyncio.sleep(0.2)
    assert not later.done()  # nobody serves now; the call waits in the queue
    await (await network.bus()).serve("drain", slowish)
    assert (await later).text == "done"


async def test_stop_without_drain_requeues_calls_under_way(bus: Bus, network: Network) -> None:
    started = asyncio.Event()

    async def stuck(call: ToolCall) -> ToolResult:
        started.set()
        await asyncio.sleep(10)
        return ToolResult.ok(call.call_id, text="never")

    serving = await (await network.bus()).serve("requeue", stuck)
    call = ToolCall.create("requeue_tool", {}, timeout=5, repeatable=True)
    pending = asyncio.create_task(bus.call("requeue", call))
    await started.wait()
    await serving.stop(drain=False)

    attempts: list[int] = []

    async def quick(call: ToolCall) -> ToolResult:
        attempts.append(call.attempt)
        return ToolResult.ok(call.call_id, text="second worker")

    await (await network.bus()).serve("requeue", quick)
    assert (await pending).text == "second worker"
    assert attempts == [1]  # a requeue is a redelivery of the same attempt, not a retry


async def test_an_abandoned_call_that_is_not_repeatable_is_not_run_again(bus: Bus, network: Network) -> None:
    started = asyncio.Event()

    async def stuck(call: ToolCall) -> ToolResult:
        started.set()
        await asyncio.sleep(10)
        return ToolResult.ok(call.call_id, text="never")

    serving = await (await network.bus()).serve("abandoned", stuck)
    pending = asyncio.create_task(bus.call("abandoned", ToolCall.create("abandoned_tool", {}, timeout=5)))
    await started.wait()
    await serving.stop(drain=False)

    ran: list[str] = []

    async def quick(call: ToolCall) -> ToolResult:
        ran.append(call.call_id)
        return ToolResult.ok(call.call_id, text="second worker")

    await (await network.bus()).serve("abandoned", quick)
    result = await pending
    assert result.is_error and "may or may not have happened" in result.text, result.text
    assert ran == []  # it may have acted halfway: the second worker says so instead of acting again


async def test_replay_and_purge_dead_letters(bus: Bus, network: Network) -> None:
    healthy = False
    done: list[str] = []

    async def sometimes(call: ToolCall) -> ToolResult:
        if not healthy:
            raise RuntimeError("dependency down")
        done.append(call.idempotency_key)
        return ToolResult.ok(call.call_id, text="ok")

    await (await network.bus()).serve("replayer", sometimes)
    calls = [ToolCall.create("replay_tool", {"i": i}, timeout=5) for i in range(3)]
    for call in calls:
        assert (await bus.call("replayer", call)).is_error
    letters = await wait_for_dead_letters(bus, 3)
    assert {x.id for x in letters} == {c.call_id for c in calls}

    healthy = True
    assert await bus.replay([calls[0].call_id]) == 1
    # No caller waits for a replay: its result lands in the store.
    await eventually(lambda: network.store.get(calls[0].idempotency_key))
    assert done == [calls[0].idempotency_key]
    assert {x.id for x in await bus.dead_letters()} == {calls[1].call_id, calls[2].call_id}

    assert await bus.purge([calls[1].call_id]) == 1
    assert [x.id for x in await bus.dead_letters()] == [calls[2].call_id]
    assert await bus.purge() == 1
    assert await bus.dead_letters() == []


async def test_bus_that_is_not_started_says_so(network: Network) -> None:
    bus: Bus = LocalBus() if network.kind == "local" else type(await network.bus())(network.url or "")
    with pytest.raises(BusUnavailable, match="not started"):
        await bus.call("x", ToolCall.create("x_tool", {}, timeout=1))
