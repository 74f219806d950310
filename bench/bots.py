"""Bot executor benchmark: how long a start takes to have the process running, beside a bare
``asyncio.create_subprocess_exec`` of the same command, and what watching idle bots costs the executor.

Prints one JSON object; every figure sits beside its baseline from the same run:
- start: p50/p95 (ms) over ``--starts`` starts of ``sleep 600`` with ``Supervisor.start`` alone,
  interleaved with bare spawns (default stdio) and bare spawns with the supervisor's options (pipes, new
  session);
- tool_start: the ``bots_start`` tool of a running ``BotsAgent`` (embedded PostgreSQL), on the LocalBus and
  on RabbitMQ when reachable, over ``--tool-starts`` starts each of a bus call to the agent and of
  ``Kommandant.run_tool``, interleaved with bare spawns; each start is timed to the process running (the
  executor's ``Supervisor.start`` returned: the pid exists) and to the reply, and split into the parts
  to the agent (``run_tool``'s policy and write-ahead audit, bus delivery, name check, registry read),
  the desired-state write, the supervisor start itself, the agent's audit write, and the reply (over the
  bus; ``run_tool`` adds its turn audit). The bot is stopped between starts;
- watching: the process's own CPU (user + system, % of one core, psutil) over ``--seconds`` while it
  watches ``--bots`` idle bots, beside the same process over the same time with no bots.
Targets: start p50 <= bare p50 + 30 ms; watching 20 bots < 2 % of one core.
Usage: python bench/bots.py [--starts 30] [--tool-starts 20] [--bots 20] [--seconds 10]
       [--watch-interval 0.25] [--url amqp://…]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from pydantic import SecretStr

from agents.base import CallContext
from agents.bots import BotSpec, Snapshot, Supervisor, Transition
from agents.bots.agent import BotsAgent, executor_queue
from assistant.events import ToolFinished, Turn
from assistant.runtime import Runtime
from bus import BusUnavailable, ToolCall
from bus.rabbit import Topology, delete_topology, safe_url
from settings import Settings
from storage import Database
from storage.bots import BotConfig, BotRecord, BotRegistry
from storage.embedded import stop_embedded
from tools.builtin import bots

COMMAND = ("sleep", "600")
HOST = "bench"
WARM_UP = 3
"""Tool starts before the measured ones: connection pools, prepared statements, first imports."""
SETTLE = 0.2
"""Seconds after each stop, so the stop's queued Postgres writes do not land inside the next start."""


async def ignore(transition: Transition) -> None:
    pass


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)], 2),  # nearest rank
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


async def timed(start: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await start()
    return (time.perf_counter() - began) * 1000


async def bare_spawn() -> float:
    """One bare ``create_subprocess_exec`` of the command (ms until it returns), then the process ends."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*COMMAND)
    took = (time.perf_counter() - began) * 1000
    process.kill()
    await process.communicate()
    return took


async def bench_start(supervisor: Supervisor, starts: int) -> dict[str, object]:
    bare: list[float] = []
    bare_same: list[float] = []
    supervised: list[float] = []
    for n in range(starts):
        process = None

        async def plain() -> None:
            nonlocal process
            process = await asyncio.create_subprocess_exec(*COMMAND)

        async def same_options() -> None:
            nonlocal process
            process = await asyncio.create_subprocess_exec(
                *COMMAND, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
            )  # fmt: skip

        for spawn, samples in ((plain, bare), (same_options, bare_same)):
            samples.append(await timed(spawn))
            assert process is not None
            process.kill()
            await process.communicate()
        name = f"start-{n}"
        supervised.append(await timed(lambda: supervisor.start(BotSpec(name, COMMAND))))  # noqa: B023
        await supervisor.stop(name)
    result = {
        "bare_exec": summary(bare),
        "bare_exec_with_pipes_and_session": summary(bare_same),
        "supervisor_start": summary(supervised),
    }
    overhead = result["supervisor_start"]["p50_ms"] - result["bare_exec"]["p50_ms"]
    return result | {"overhead_p50_ms": round(overhead, 2), "target_met": overhead <= 30}


class StartMarks:
    """Notes when the agent's desired-state write began and ended, when its ``Supervisor.start`` began
    and returned (the process exists then), and when its audit write after it ended."""

    def __init__(self, agent: BotsAgent) -> None:
        self.wanting = self.began = self.running = self.audited = 0.0
        self._want, self._start, self._audit = agent.registry.want, agent.supervisor.start, agent._audit
        agent.registry.want = self.want  # type: ignore[method-assign]
        agent.supervisor.start = self.start  # type: ignore[method-assign]
        agent._audit = self.audit  # type: ignore[method-assign]

    async def want(self, name: str, state: str, **options: Any) -> BotRecord:
        self.wanting = time.perf_counter()
        return await self._want(name, state, **options)  # type: ignore[arg-type]

    async def start(self, spec: BotSpec) -> Snapshot:
        self.began = time.perf_counter()
        snapshot = await self._start(spec)
        self.running = time.perf_counter()
        return snapshot

    async def audit(self, kind: str, name: str, ctx: CallContext) -> None:
        await self._audit(kind, name, ctx)
        self.audited = time.perf_counter()


class ToolStarts:
    """Samples (ms from the call) of one way of calling ``bots_start``."""

    def __init__(self) -> None:
        self.to_running: list[float] = []
        self.to_reply: list[float] = []
        self.to_agent: list[float] = []
        self.desired_state_write: list[float] = []
        self.supervisor_start: list[float] = []
        self.audit_write: list[float] = []
        self.reply: list[float] = []

    def add(self, sent: float, marks: StartMarks, replied: float) -> None:
        self.to_running.append((marks.running - sent) * 1000)
        self.to_reply.append((replied - sent) * 1000)
        self.to_agent.append((marks.wanting - sent) * 1000)
        self.desired_state_write.append((marks.began - marks.wanting) * 1000)
        self.supervisor_start.append((marks.running - marks.began) * 1000)
        self.audit_write.append((marks.audited - marks.running) * 1000)
        self.reply.append((replied - marks.audited) * 1000)

    def report(self, bare: dict[str, float]) -> dict[str, Any]:
        running, reply = summary(self.to_running), summary(self.to_reply)
        overhead = round(running["p50_ms"] - bare["p50_ms"], 2)
        return {
            "to_running": running,
            "to_reply": reply,
            "parts": {
                "to_agent": summary(self.to_agent),
                "desired_state_write": summary(self.desired_state_write),
                "supervisor_start": summary(self.supervisor_start),
                "audit_write": summary(self.audit_write),
                "reply": summary(self.reply),
            },
            "running_overhead_p50_ms": overhead,
            "reply_overhead_p50_ms": round(reply["p50_ms"] - bare["p50_ms"], 2),
            "target_met": overhead <= 30,
        }


def started_pid(structured: dict[str, Any] | None) -> int:
    """The pid in a ``bots_start`` result, checked to be a live process."""
    assert structured is not None and structured["bot"]["status"] == "running", structured
    pid = int(structured["bot"]["pid"])
    assert psutil.pid_exists(pid), pid
    return pid


async def start_over_bus(rt: Runtime, name: str) -> None:
    """``bots_start`` as a call on the bus, straight to the agent."""
    assert rt.services is not None
    call = ToolCall.create(
        bots.START.name, {"name": name}, timeout=20, user="bench", channel="bench", role="admin"
    )
    result = await rt.services.bus.call(bots.AGENT, call)
    assert not result.is_error, result.text
    started_pid(result.result.structuredContent)


async def start_through_kommandant(rt: Runtime, name: str) -> None:
    """``bots_start`` through ``Kommandant.run_tool``: policy, the turn's audit, then the bus call."""
    assert rt.kommandant is not None
    turn = Turn(text=f"start the {name} bot", user="bench", channel="bench", role="admin")
    events = [event async for event in rt.kommandant.run_tool(bots.START, {"name": name}, turn)]
    [finished] = [event for event in events if isinstance(event, ToolFinished)]
    assert finished.ok, finished
    started_pid(finished.structured)


async def stop_over_bus(rt: Runtime, name: str) -> None:
    assert rt.services is not None
    call = ToolCall.create(
        bots.STOP.name, {"name": name}, timeout=20, user="bench", channel="bench", role="admin"
    )
    result = await rt.services.bus.call(bots.AGENT, call)
    assert not result.is_error, result.text
    await asyncio.sleep(SETTLE)


async def tool_starts(rt: Runtime, name: str, starts: int) -> dict[str, Any]:
    """Interleaved: a bare spawn, a start over the bus, a start through the Kommandant; stop after each."""
    [agent] = [worker.agent for worker in rt.workers if isinstance(worker.agent, BotsAgent)]
    marks = StartMarks(agent)
    ways = {"bus_call": start_over_bus, "kommandant_run_tool": start_through_kommandant}
    samples = {way: ToolStarts() for way in ways}
    bare: list[float] = []
    for n in range(WARM_UP + starts):
        spawned = await bare_spawn()
        for way, start in ways.items():
            sent = time.perf_counter()
            await start(rt, name)
            replied = time.perf_counter()
            if n >= WARM_UP:
                samples[way].add(sent, marks, replied)
            await stop_over_bus(rt, name)  # its audit write moves the mark: the sample is taken before
        if n >= WARM_UP:
            bare.append(spawned)
    baseline = summary(bare)
    return {"bare_exec": baseline} | {way: s.report(baseline) for way, s in samples.items()}


def tool_settings(base: Settings, kind: str, url: str) -> Settings:
    if kind == "local":
        return base
    return base.model_copy(update={"amqp_url": SecretStr(url), "bus_prefix": f"kbench{uuid.uuid4().hex[:6]}"})


async def bench_tool_start(
    db: Database, base: Settings, kind: str, args: argparse.Namespace
) -> dict[str, Any]:
    """``bots_start`` of one registered bot on one bus kind; RabbitMQ unreachable is reported, not fatal."""
    settings = tool_settings(base, kind, args.url)
    name = f"bench-{kind}"
    await BotRegistry(db.sessionmaker).add(BotConfig(name=name, command=COMMAND, restart="no"))
    opened = False
    try:
        async with Runtime(settings, agents=[bots.AGENT], database=db) as rt:
            opened = True
            return await tool_starts(rt, name, args.tool_starts)
    except BusUnavailable as err:
        if opened:
            raise
        return {"error": f"not measured: {err}"}
    finally:
        if opened and settings.amqp_url is not None:
            queues = [bots.AGENT, executor_queue(HOST)]
            await delete_topology(args.url, Topology(settings.bus_prefix), queues)


@asynccontextmanager
async def embedded_database() -> AsyncIterator[tuple[Database, Settings]]:
    """A fresh embedded PostgreSQL and settings for a bots agent on it, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="kommandant-bench-bots-db-"))
    settings = Settings(
        _env_file=None,
        data_dir=folder / "data",
        amqp_url=None,
        llm_model="",
        log_level="WARNING",
        bots_host=HOST,
        bots_grace=1.0,
    )
    try:
        async with Database(data_dir=folder / "pgdata") as db:
            yield db, settings
    finally:
        await stop_embedded(folder / "pgdata")
        shutil.rmtree(folder, ignore_errors=True)


def own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


async def cpu_percent_over(seconds: float) -> float:
    before, began = own_cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    return round(100 * (own_cpu() - before) / (time.monotonic() - began), 2)


async def bench_watching(supervisor: Supervisor, bots: int, seconds: float) -> dict[str, object]:
    idle = await cpu_percent_over(seconds)
    for n in range(bots):
        await supervisor.start(BotSpec(f"idle-{n}", COMMAND))
    await asyncio.sleep(1.0)
    watching = await cpu_percent_over(seconds)
    running = sum(1 for snapshot in supervisor.all() if snapshot.state == "running")
    return {
        "bots_running": running,
        "no_bots_cpu_percent": idle,
        "watching_cpu_percent": watching,
        "overhead_cpu_percent": round(watching - idle, 2),
        "target_met": watching < 2.0,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=30, help="starts measured of each kind")
    parser.add_argument(
        "--tool-starts", type=int, default=20, help="bots_start calls measured per way and bus"
    )
    parser.add_argument("--bots", type=int, default=20, help="idle bots watched")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU measuring window")
    parser.add_argument("--watch-interval", type=float, default=0.25)
    parser.add_argument(
        "--url", default=os.environ.get("KOMMANDANT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kommandant-bench-bots-") as folder:
        supervisor = Supervisor(Path(folder), ignore, grace=1.0, watch_interval=args.watch_interval)
        try:
            start = await bench_start(supervisor, args.starts)
            watching = await bench_watching(supervisor, args.bots, args.seconds)
        finally:
            await supervisor.close()
    async with embedded_database() as (db, settings):
        tool_start = {kind: await bench_tool_start(db, settings, kind, args) for kind in ("local", "rabbit")}
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "psutil": psutil.__version__,
        },
        "settings": vars(args) | {"command": list(COMMAND), "url": safe_url(args.url)},
        "note": "start: until the process exists (Supervisor.start returns in state running); "
        "supervisor adds pipes, a new session, an initial tree sample and the transition queue. "
        "tool_start: to_running ends when the executor's Supervisor.start returned (pid exists), "
        "to_reply when the caller had the reply; both include the bus (LocalBus or RabbitMQ) and the "
        "agent's Postgres writes (desired state before the start, audit after; run_tool adds its turn "
        "audit and the call's idempotency record); the state transitions are written in the background",
        "start": start,
        "tool_start": tool_start,
        "watching": watching,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
