"""Scheduler benchmark: lateness (actual - planned start) of scheduled runs with one and two scheduler
replicas on RabbitMQ, beside two baselines measured in the same run.

Each phase runs SCHEDULES schedules every EVERY seconds until about OCCURRENCES occurrences were due. Lateness
is measured twice: ``claimed`` (when a scheduler claimed the occurrence and started its turn) and
``effect`` (when the command's effect, a reminder row, was written by the reminders agent: the whole
path of claim, turn, policy, audit, bus and agent). Baselines: ``sleep`` is how late a bare
``asyncio.sleep`` until the same due times wakes on this machine, ``direct_call`` is one tool call of the
same command straight over the bus (no scheduler, no turn). The replicas run in this process, each with
its own database pool and broker connection. Prints one JSON object.

Usage: python bench/scheduler.py [--url amqp://…] [--occurrences 200] [--schedules 5] [--every 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr
from sqlalchemy import text

from agents import BUILTIN_AGENTS
from assistant.runtime import Runtime
from bus import ToolCall
from bus.rabbit import Topology, delete_topology
from settings import Settings
from storage import Database


def stats(samples_ms: list[float]) -> dict[str, float]:
    """Count, median, 99th percentile and maximum of ``samples_ms``."""
    ordered = sorted(samples_ms)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def sleep_baseline(count: int) -> dict[str, float]:
    """How late asyncio wakes for due times a tenth of a second apart."""
    late = []
    start = time.time() + 0.1
    for i in range(count):
        due = start + i * 0.1
        await asyncio.sleep(max(0.0, due - time.time()))
        late.append((time.time() - due) * 1000)
    return stats(late)


async def direct_calls(rt: Runtime, count: int) -> dict[str, float]:
    """The scheduled command called straight over the bus: the floor of the effect path."""
    assert rt.services is not None
    took = []
    for i in range(count):
        arguments = {"text": f"direct-{i}", "due": "2030-01-01T00:00:00Z"}
        call = ToolCall.create("reminders_create", arguments, timeout=10, user="bench", role="operator")
        started = time.perf_counter()
        result = await rt.services.bus.call("reminders", call)
        took.append((time.perf_counter() - started) * 1000)
        assert not result.is_error, result.text
    return stats(took)


async def phase(
    db: Database, settings: Settings, agents: Runtime, replicas: int, args: Any
) -> dict[str, Any]:
    """Run ``replicas`` schedulers over fresh schedules until ``args.occurrences`` were due; lateness."""
    assert agents.services is not None
    tag = uuid.uuid4().hex[:6]
    async with AsyncExitStack() as stack:
        for _ in range(replicas):
            await stack.enter_async_context(Runtime(settings, agents=(), database=None, scheduler=True))
        for i in range(args.schedules):
            arguments = {
                "target": "note a tick",
                "name": f"bench-{tag}-{i}",
                "when": {"every_seconds": args.every},
                "concurrency": 5,
                "grace_seconds": 60,
                "command": [
                    {
                        "tool": "reminders_create",
                        "arguments": {"text": f"{tag}-{i}", "due": "2030-01-01T00:00:00Z"},
                    }
                ],
            }
            call = ToolCall.create("schedules_create", arguments, timeout=10, user="bench", role="operator")
            result = await agents.services.bus.call("scheduler", call)
            assert not result.is_error, result.text
        await asyncio.sleep(args.occurrences / args.schedules * args.every + 0.5)
        async with db.sessionmaker() as session, session.begin():
            await session.execute(
                text("UPDATE schedules SET enabled = false WHERE name LIKE :p"), {"p": f"bench-{tag}-%"}
            )
        for _ in range(300):  # the last runs finish
            async with db.sessionmaker() as session:
                running = await session.scalar(
                    text("SELECT count(*) FROM scheduled_runs WHERE status = 'running'")
                )
            if not running:
                break
            await asyncio.sleep(0.1)
    claimed: list[float] = []
    effect: list[float] = []
    statuses: dict[str, int] = {}
    async with db.sessionmaker() as session:
        for i in range(args.schedules):
            runs = (
                await session.execute(
                    text(
                        "SELECT r.due_at, r.started_at, r.status FROM scheduled_runs r JOIN schedules s"
                        " ON s.id = r.schedule_id WHERE s.name = :n ORDER BY r.due_at"
                    ),
                    {"n": f"bench-{tag}-{i}"},
                )
            ).all()
            written = (
                await session.execute(
                    text("SELECT created_at FROM reminders WHERE text = :t ORDER BY created_at"),
                    {"t": f"{tag}-{i}"},
                )
            ).all()
            done = [r for r in runs if r.status == "ok"]
            for run in runs:
                statuses[run.status] = statuses.get(run.status, 0) + 1
            claimed += [(r.started_at - r.due_at).total_seconds() * 1000 for r in done]
            if len(written) == len(done):  # one effect per run, in order
                effect += [
                    (w.created_at - r.due_at).total_seconds() * 1000
                    for r, w in zip(done, written, strict=True)
                ]
            else:
                statuses["effects_mismatch"] = statuses.get("effects_mismatch", 0) + 1
    return {"replicas": replicas, "runs": statuses, "claimed": stats(claimed), "effect": stats(effect)}


async def main(args: Any) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="kommandant-bench-sched-")) / "pgdata"
    prefix = f"kbench{uuid.uuid4().hex[:6]}"
    try:
        async with Database(data_dir=data_dir) as db:
            settings = Settings(
                _env_file=None,
                data_dir=data_dir.parent / "data",
                database_url=db.url,
                amqp_url=SecretStr(args.url),
                bus_prefix=prefix,
                llm_model="",
                log_level="WARNING",
                scheduler_concurrency=200,
            )
            async with Runtime(settings, agents=list(BUILTIN_AGENTS), database=db) as agents:
                baseline = {
                    "sleep": await sleep_baseline(args.occurrences),
                    "direct_call": await direct_calls(agents, args.occurrences),
                }
                one = await phase(db, settings, agents, 1, args)
                two = await phase(db, settings, agents, 2, args)
            await delete_topology(args.url, Topology(prefix), BUILTIN_AGENTS)
    finally:
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    return {
        "benchmark": "scheduler lateness (actual - planned start)",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "occurrences_per_phase": args.occurrences,
        "schedules": args.schedules,
        "every_seconds": args.every,
        "bus": "rabbitmq",
        "baseline": baseline,
        "one_replica": one,
        "two_replicas": two,
        "target": "p99 < 1000 ms (effect)",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("KOMMANDANT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--occurrences", type=int, default=200)
    parser.add_argument("--schedules", type=int, default=5)
    parser.add_argument("--every", type=int, default=2, help="Seconds between a schedule's runs.")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
