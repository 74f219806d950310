"""Bus benchmark: RPC latency and throughput of RabbitBus beside a bare aio-pika request/reply and LocalBus.

Prints one JSON object. Same machine, same run; both RabbitMQ variants publish persistent messages with
publisher confirms on the request and the reply, use direct reply-to, and ack after replying.
Usage: python bench/bus.py [--url amqp://…] [--calls 2000] [--concurrent 5000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aio_pika

from bus import Bus, LocalBus, RabbitBus, ToolCall, ToolResult, Topology
from bus.rabbit import delete_topology

Call = Callable[[int], Awaitable[Any]]


async def measure(call: Call, *, sequential: int, concurrent: int, concurrency: int) -> dict[str, float]:
    """p50/p99 of sequential calls (ms) and calls/s with ``concurrency`` calls in flight."""
    for i in range(min(200, sequential)):
        await call(i)
    samples = []
    for i in range(sequential):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    gate = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> None:
        async with gate:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(limited(i) for i in range(concurrent)))
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "throughput_per_s": round(concurrent / elapsed, 1),
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds."""
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}


async def echo(call: ToolCall) -> ToolResult:
    return ToolResult.ok(call.call_id, text="pong", structured={"i": call.arguments["i"]})


async def bench_bus(client: Bus, worker: Bus | None, args: argparse.Namespace) -> dict[str, float]:
    if worker is not None:
        await worker.serve("bench", echo, concurrency=args.concurrency)

    async def one(i: int) -> ToolResult:
        result = await client.call("bench", ToolCall.create("bench_ping", {"i": i}, timeout=30))
        assert result.text == "pong", result
        return result

    return await measure(one, sequential=args.calls, concurrent=args.concurrent, concurrency=args.concurrency)


async def bench_rabbit(args: argparse.Namespace, *, separate: bool) -> dict[str, float]:
    prefix = f"kbench{uuid4().hex[:8]}"
    try:
        async with RabbitBus(args.url, prefix=prefix) as client:
            if not separate:
                async with RabbitBus(args.url, prefix=prefix) as worker:
                    return await bench_bus(client, worker, args)
            await client.declare_agent("bench")
            async with worker_process(args, "rabbit", prefix):
                return await bench_bus(client, None, args)
    finally:
        await delete_topology(args.url, Topology(prefix), ["bench"])


@contextlib.asynccontextmanager
async def worker_process(args: argparse.Namespace, kind: str, name: str) -> AsyncIterator[None]:
    """The serving side in its own process (its own core), as in a distributed deployment."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", kind, "--name", name, "--url", args.url,
        "--concurrency", str(args.concurrency), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        assert (await process.stdout.readline()).strip() == b"ready"
        yield
    finally:
        process.terminate()
        await process.wait()


async def serve_forever(args: argparse.Namespace) -> None:
    """``--serve rabbit|bare``: the worker side of a two-process run."""
    if args.serve == "rabbit":
        async with RabbitBus(args.url, prefix=args.name) as bus:
            await bus.serve("bench", echo, concurrency=args.concurrency)
            print("ready", flush=True)
            await asyncio.Event().wait()
    connection = await aio_pika.connect_robust(args.url)
    async with connection:
        await bare_server(connection, args.name, args.concurrency)
        print("ready", flush=True)
        await asyncio.Event().wait()


async def bench_local(args: argparse.Namespace) -> dict[str, float]:
    async with LocalBus() as bus:
        return await bench_bus(bus, bus, args)


async def bare_server(
    connection: aio_pika.abc.AbstractRobustConnection, queue_name: str, prefetch: int
) -> None:
    """Plain aio-pika serving: durable queue, confirmed reply to direct reply-to, ack after the reply."""
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.declare_queue(queue_name, durable=True)

    async def on_request(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        request = json.loads(message.body)
        body = json.dumps({"call_id": request["call_id"], "text": "pong", "i": request["i"]}).encode()
        reply = aio_pika.Message(body, content_type="application/json", correlation_id=message.correlation_id)
        await channel.default_exchange.publish(reply, routing_key=message.reply_to or "", mandatory=False)
        await message.ack()

    await queue.consume(on_request)


async def bench_bare(args: argparse.Namespace, *, separate: bool) -> dict[str, float]:
    """Plain aio-pika RPC doing the same broker work as RabbitBus: durable queue, persistent + confirmed
    request, direct reply-to, confirmed reply, ack after the reply. JSON bodies, no envelope validation."""
    queue_name = f"kbench.bare.{uuid4().hex[:8]}"
    client = await aio_pika.connect_robust(args.url)
    server = None if separate else await aio_pika.connect_robust(args.url)
    try:
        channel = await client.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True)
        if server is not None:
            await bare_server(server, queue_name, args.concurrency)
        waiting: dict[str, asyncio.Future[bytes]] = {}

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            future = waiting.pop(message.correlation_id or "", None)
            if future is not None:
                future.set_result(message.body)

        replies = await channel.declare_queue("amq.rabbitmq.reply-to", passive=True)
        await replies.consume(on_reply, no_ack=True)
        loop = asyncio.get_running_loop()

        async def one(i: int) -> bytes:
            correlation_id = uuid4().hex
            future: asyncio.Future[bytes] = loop.create_future()
            waiting[correlation_id] = future
            body = json.dumps({"call_id": correlation_id, "name": "bench_ping", "i": i}).encode()
            message = aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=correlation_id,
                reply_to="amq.rabbitmq.reply-to",
            )
            await channel.default_exchange.publish(message, routing_key=queue_name)
            return await future

        if not separate:
            return await measure(
                one, sequential=args.calls, concurrent=args.concurrent, concurrency=args.concurrency
            )
        async with worker_process(args, "bare", queue_name):
            return await measure(
                one, sequential=args.calls, concurrent=args.concurrent, concurrency=args.concurrency
            )
    finally:
        if server is not None:
            await server.close()
        cleanup = await client.channel()
        await cleanup.queue_delete(queue_name)
        await client.close()


def compare(rabbit: dict[str, float], bare: dict[str, float]) -> dict[str, Any]:
    ratio = rabbit["throughput_per_s"] / bare["throughput_per_s"]
    return {
        "rabbit_bus": rabbit,
        "bare_aio_pika": bare,
        "rabbit_vs_bare_throughput": round(ratio, 3),
        "targets_met": {
            "rabbit_p50_le_2ms": rabbit["p50_ms"] <= 2.0,
            "rabbit_p99_le_5ms": rabbit["p99_ms"] <= 5.0,
            "rabbit_throughput_ge_80pct_of_bare": ratio >= 0.8,
        },
    }


async def run_pair(args: argparse.Namespace, *, separate: bool) -> dict[str, Any]:
    # Interleaved rounds, median of each figure: the machine is shared, so load drifts during a run.
    bare_runs, rabbit_runs = [], []
    for _ in range(args.rounds):
        bare_runs.append(await bench_bare(args, separate=separate))
        rabbit_runs.append(await bench_rabbit(args, separate=separate))
    return compare(median_of(rabbit_runs), median_of(bare_runs))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("KOMMANDANT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--calls", type=int, default=1500, help="sequential calls measured")
    parser.add_argument("--concurrent", type=int, default=3000, help="calls in the throughput run")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight in the throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of bare and RabbitBus")
    parser.add_argument("--serve", choices=["rabbit", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--name", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve_forever(args)
        return
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "aio_pika": aio_pika.__version__,
        },
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("serve", "name", "url")},
            "result_store": "memory (per process)",
        },
        "note": "median of interleaved rounds; both RabbitMQ variants: persistent, confirmed both ways, "
        "direct reply-to, ack after reply; RabbitBus adds envelopes, deadlines and idempotency",
        "two_processes": await run_pair(args, separate=True),
        "one_process": await run_pair(args, separate=False),
        "local_bus": await bench_local(args),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
