"""Faults on the real broker: a worker killed mid-call, connections cut during a stream of calls."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from bus import BusUnavailable, CallTimeout, RabbitBus, ToolCall, ToolResult, Topology
from storage import Database, PostgresResultStore
from tests.bus.conftest import Network, eventually

pytestmark = pytest.mark.rabbit
ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(loop_scope="session")
async def rabbit(amqp_url: str, bus_prefix: str, db: Database) -> AsyncIterator[Network]:
    net = Network("rabbit", PostgresResultStore(db.sessionmaker), amqp_url, bus_prefix)
    try:
        yield net
    finally:
        await net.close()


async def start_worker(net: Network, db: Database, effects: Path, *extra: str) -> asyncio.subprocess.Process:
    args = ["--url", net.url or "", "--prefix", net.prefix, "--db-url", db.url, "--agent", "jobs"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tests/bus/worker.py"), *args, "--effects", str(effects), *extra,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    async with asyncio.timeout(20):
        line = await process.stdout.readline()
    assert line.strip() == b"ready", line
    return process


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def wait_until(check: Callable[[], object], seconds: float = 10.0) -> None:
    """Poll ``check`` (state in files, processes or the broker) until it is truthy."""
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)


LEASE = "1.5"  # seconds: a redelivery of a call whose worker died takes it over after this


async def test_worker_killed_mid_call_reruns_a_repeatable_call_once(
    rabbit: Network, db: Database, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    client = await rabbit.bus()
    client.known_agents.add("jobs")  # so the queue is deleted afterwards
    first = await start_worker(rabbit, db, effects, "--after", "5", "--lease", LEASE)
    call = ToolCall.create("jobs_run", {"n": 1}, timeout=30, idempotency_key="job-1", repeatable=True)
    pending = asyncio.create_task(client.call("jobs", call))

    await wait_until(lambda: lines(effects) == ["done job-1"])  # the effect happened; no result stored yet
    first.send_signal(signal.SIGKILL)
    await first.wait()
    second = await start_worker(rabbit, db, effects, "--work", "0.1", "--lease", LEASE)
    try:
        result = await pending
    finally:
        second.kill()
        await second.wait()

    assert result.text == f"done by {second.pid}" and not result.replayed
    assert len(lines(Path(f"{effects}.started"))) == 2  # killed once, taken over once the lease lapsed
    assert lines(effects) == ["done job-1"]  # keyed by the idempotency key: it happened exactly once
    assert await rabbit.store.get("job-1") is not None


async def test_worker_killed_mid_call_never_reruns_a_call_that_is_not_repeatable(
    rabbit: Network, db: Database, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    client = await rabbit.bus()
    client.known_agents.add("jobs")
    first = await start_worker(rabbit, db, effects, "--work", "3", "--lease", LEASE)
    call = ToolCall.create("jobs_run", {"n": 3}, timeout=30, idempotency_key="job-3")
    pending = asyncio.create_task(client.call("jobs", call))

    await wait_until(lambda: len(lines(Path(f"{effects}.started"))) == 1)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    second = await start_worker(rabbit, db, effects, "--lease", LEASE)
    try:
        result = await pending
        again = await client.call(
            "jobs", ToolCall.create("jobs_run", {}, timeout=10, idempotency_key="job-3")
        )
    finally:
        second.kill()
        await second.wait()

    assert result.is_error and "may or may not have happened" in result.text, result.text
    assert len(lines(Path(f"{effects}.started"))) == 1  # the second worker did not run it
    assert again.replayed and again.text == result.text  # that answer is the key's one result


async def test_redelivery_waits_for_the_result_while_the_first_worker_still_runs(
    rabbit: Network, db: Database, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    client = await rabbit.bus()
    client.known_agents.add("jobs")
    first = await start_worker(rabbit, db, effects, "--work", "2", "--lease", LEASE)
    second = await start_worker(rabbit, db, effects, "--work", "2", "--lease", LEASE)
    try:
        once = ToolCall.create("jobs_run", {}, timeout=30, idempotency_key="job-4")
        twice = ToolCall.create("jobs_run", {}, timeout=30, idempotency_key="job-4")
        results = await asyncio.gather(client.call("jobs", once), client.call("jobs", twice))
    finally:
        for worker in (first, second):
            worker.kill()
            await worker.wait()

    assert lines(effects) == ["done job-4"]  # the lease outlived 1.5 s by renewal: the other one waited
    assert len(lines(Path(f"{effects}.started"))) == 1
    assert sorted(r.replayed for r in results) == [False, True]
    assert results[0].text == results[1].text


async def test_worker_killed_after_storing_returns_the_stored_result(
    rabbit: Network, db: Database, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    client = await rabbit.bus()
    client.known_agents.add("jobs")
    first = await start_worker(rabbit, db, effects, "--crash-after-store")
    call = ToolCall.create("jobs_run", {"n": 2}, timeout=30, idempotency_key="job-2")
    pending = asyncio.create_task(client.call("jobs", call))

    assert await first.wait() == -signal.SIGKILL  # it acted, stored the result, and died unanswered
    assert lines(effects) == ["done job-2"]
    second = await start_worker(rabbit, db, effects)
    try:
        result = await pending
    finally:
        second.kill()
        await second.wait()

    assert result.replayed and result.call_id == call.call_id
    assert result.text == f"done by {first.pid}"  # the stored answer, not a second run
    assert lines(effects) == ["done job-2"]
    assert len(lines(Path(f"{effects}.started"))) == 1


async def force_close_connections(prefix: str, buses: list[RabbitBus]) -> str:
    """Close our connections from the broker side (rabbitmqctl), or cut their transports when we can't."""
    if shutil.which("rabbitmqctl"):
        listing = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", "--no-table-headers", "list_connections", "pid", "client_properties",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await listing.communicate()
        pids = [line.split("\t", 1)[0] for line in out.decode().splitlines() if f":{prefix}:" in line]
        if listing.returncode == 0 and len(pids) == len(buses):
            closers = [
                await asyncio.create_subprocess_exec(
                    "rabbitmqctl",
                    "-q",
                    "close_connection",
                    pid,
                    "fault test: forced close",
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                for pid in pids
            ]
            codes = await asyncio.gather(*(c.wait() for c in closers))
            if all(code == 0 for code in codes):
                return "rabbitmqctl close_connection"
    for bus in buses:
        assert bus._connection is not None and bus._connection.transport is not None
        await bus._connection.transport.connection.close(ConnectionError("fault test: transport cut"))
    return "transport closed"


async def test_connection_cut_during_1000_calls_loses_none(
    rabbit: Network, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bus.rabbit")
    client = await rabbit.bus()
    worker = await rabbit.bus()
    assert isinstance(client, RabbitBus) and isinstance(worker, RabbitBus)
    served: Counter[str] = Counter()

    async def handle(call: ToolCall) -> ToolResult:
        await asyncio.sleep(0.02)
        served[call.idempotency_key] += 1  # the side effect
        return ToolResult.ok(call.call_id, text=f"n={call.arguments['n']}")

    await worker.serve("stream", handle, concurrency=10)
    total, finished = 1000, 0
    results: dict[int, ToolResult] = {}
    errors: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    gate = asyncio.Semaphore(20)

    async def one(n: int) -> None:
        nonlocal finished
        async with gate:
            try:
                results[n] = await client.call("stream", ToolCall.create("stream_tool", {"n": n}, timeout=8))
            except (BusUnavailable, CallTimeout) as err:
                assert "stream_tool" in str(err) or "broker" in str(err), err
                errors[type(err).__name__] += 1
            except BaseException as err:  # anything else would be a vanished or garbled call
                unexpected.append(err)
            finally:
                finished += 1

    async def cut_when_busy() -> str:
        await wait_until(lambda: finished >= 300, seconds=30)
        return await force_close_connections(rabbit.prefix, [client, worker])

    cutter = asyncio.create_task(cut_when_busy())
    await asyncio.gather(*(one(n) for n in range(total)))
    how = await cutter

    resent = [r for r in caplog.records if "again after the connection came back" in str(r.msg)]
    print(
        f"\n1000 calls, connections cut by {how}: {len(results)} results, {dict(errors)} errors, "
        f"{len(resent)} sent again"
    )
    assert unexpected == []
    assert len(results) + sum(errors.values()) == total, (how, len(results), errors)
    assert all(r.text == f"n={n}" and not r.is_error for n, r in results.items())
    assert resent, f"the cut ({how}) should have interrupted some calls"
    assert not errors  # each interrupted call was sent again under its key once the connection was back
    assert max(served.values()) == 1  # and none ran twice (the keys are unique per call)
    after = await client.call("stream", ToolCall.create("stream_tool", {"n": -1}, timeout=5))
    assert after.text == "n=-1"


async def test_unreachable_broker_is_a_clear_error() -> None:
    bus = RabbitBus("amqp://guest:guest@127.0.0.1:1/", connect_timeout=2)
    with pytest.raises(
        BusUnavailable, match=r"Cannot reach the message broker at amqp://guest:\*+@127.0.0.1:1/"
    ):
        await bus.start()


async def test_topology_is_declared_idempotently(rabbit: Network, amqp_url: str) -> None:
    import aio_pika

    one = await rabbit.bus()
    two = await rabbit.bus()  # declares the same names again without conflict
    assert isinstance(one, RabbitBus) and isinstance(two, RabbitBus)
    await one.declare_agent("memory")
    await two.declare_agent("memory")
    topology = Topology(rabbit.prefix)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in (topology.tasks, topology.events, topology.dlx):
            await channel.declare_exchange(name, passive=True)
        queue = await channel.declare_queue(topology.agent_queue("memory"), passive=True)
        dlq = await channel.declare_queue(topology.dlq, passive=True)
    assert queue.name == f"{rabbit.prefix}.tasks.memory" and dlq.name == f"{rabbit.prefix}.dlq.all"


async def test_poison_from_a_foreign_producer_is_dead_lettered(rabbit: Network, amqp_url: str) -> None:
    import aio_pika

    bus = await rabbit.bus()
    seen: list[str] = []

    async def record(call: ToolCall) -> ToolResult:
        seen.append(call.call_id)
        return ToolResult.ok(call.call_id, text="ok")

    await bus.serve("victim", record)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        message = aio_pika.Message(
            b"\x80\x04pickle!", content_type="application/python-pickle", message_id="p1"
        )
        await channel.default_exchange.publish(
            message, routing_key=Topology(rabbit.prefix).agent_queue("victim")
        )
    letters = await eventually(bus.dead_letters)
    assert seen == []
    assert letters[0].id == "p1" and letters[0].reason.startswith("poison:") and letters[0].agent == "victim"
