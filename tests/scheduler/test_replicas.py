"""Real ``kommandant scheduler`` processes on one database and RabbitMQ: two replicas run every due
occurrence exactly once (counted in Postgres: the runs and the rows their command wrote); a replica
killed for a few occurrences and started again follows each schedule's misfire policy."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio

from agents import BUILTIN_AGENTS
from assistant.runtime import Runtime
from settings import Settings
from storage import Database
from storage.schedules import ScheduleRepository
from tests.bus.conftest import eventually
from tests.scheduler.conftest import create_schedule, delete_topology, execute, rabbit, rows

ROOT = Path(__file__).resolve().parents[2]
RUN_SECONDS = 30


@pytest_asyncio.fixture(loop_scope="session")
async def agents(db: Database, settings: Settings, amqp_url: str, bus_prefix: str) -> AsyncIterator[Runtime]:
    """Every agent served from this process over RabbitMQ; the schedulers run elsewhere."""
    configured = rabbit(settings, amqp_url, bus_prefix).model_copy(update={"call_timeout": 10.0})
    async with Runtime(configured, agents=list(BUILTIN_AGENTS), database=db) as rt:
        yield rt
    await delete_topology(configured)


async def start_scheduler(rt: Runtime, db: Database) -> asyncio.subprocess.Process:
    """``kommandant scheduler`` in its own process, on the test's database and broker prefix."""
    settings = rt.settings
    assert settings.amqp_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        KOMMANDANT_DATABASE_URL=db.url,
        KOMMANDANT_AMQP_URL=settings.amqp_url.get_secret_value(),
        KOMMANDANT_BUS_PREFIX=settings.bus_prefix,
        KOMMANDANT_DATA_DIR=str(settings.data_dir),
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_LOG_LEVEL="WARNING",
        KOMMANDANT_SCHEDULER_CONCURRENCY="200",  # a catch-up of every missed occurrence runs them at once
        PYTHONPATH=str(ROOT),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assistant.cli", "scheduler", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    async with asyncio.timeout(60):
        line = await process.stdout.readline()
    assert b"Firing due schedules" in line, line
    return process


async def stop(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if process.returncode is None:
        process.send_signal(sig)
        async with asyncio.timeout(30):
            await process.wait()


async def test_two_replicas_run_every_occurrence_exactly_once(db: Database, agents: Runtime) -> None:
    assert agents.services is not None
    intervals = {"one-a": 1, "one-b": 1, "two-a": 2, "two-b": 2}
    replicas = await asyncio.gather(start_scheduler(agents, db), start_scheduler(agents, db))
    try:
        for name, seconds in intervals.items():
            await create_schedule(
                agents.services.bus,
                name=name,
                when={"every_seconds": seconds},
                concurrency=5,
                grace_seconds=60,
            )
        await asyncio.sleep(RUN_SECONDS)
        await execute(db, "UPDATE schedules SET enabled = false")
        await eventually(lambda: _none_running(db), seconds=20)
    finally:
        for process in replicas:
            await stop(process)
    repo = ScheduleRepository(db.sessionmaker)
    total = 0
    for schedule in await repo.listing():
        runs = await repo.runs(schedule.id)
        step = timedelta(seconds=intervals[schedule.name])
        dues = [r.due_at for r in runs]
        assert [r.status for r in runs] == ["ok"] * len(runs), [
            (r.status, r.due_at.time(), r.started_at.time(), r.finished_at and r.finished_at.time())
            for r in runs
        ]
        assert all(b - a == step for a, b in itertools.pairwise(dues)), f"a gap in {schedule.name}"
        assert len(runs) >= (RUN_SECONDS - 10) / step.total_seconds(), (schedule.name, len(runs))
        total += len(runs)
    effects = await rows(db, "SELECT count(*) AS n FROM reminders WHERE text = 'tick'")
    audited = await rows(db, "SELECT count(*) AS n FROM audit_log WHERE kind = 'scheduled_run'")
    assert effects[0].n == total == audited[0].n


async def _none_running(db: Database, since: datetime | None = None) -> bool:
    sql = "SELECT id FROM scheduled_runs WHERE status IN ('running', 'queued') AND started_at > :since"
    return not await rows(db, sql, since=since or datetime(2000, 1, 1, tzinfo=UTC))


async def test_a_killed_scheduler_follows_the_misfire_policy_when_started_again(
    db: Database, agents: Runtime
) -> None:
    assert agents.services is not None
    for policy in ("once", "all", "skip"):
        await create_schedule(
            agents.services.bus,
            name=policy,
            when={"every_seconds": 2},
            misfire=policy,
            grace_seconds=1,
            concurrency=50,
        )
    first = await start_scheduler(agents, db)
    try:
        await eventually(
            lambda: rows(db, "SELECT 1 FROM scheduled_runs WHERE status = 'ok' OFFSET 2"), seconds=20
        )
    finally:
        await stop(first, signal.SIGKILL)  # runs under way stay 'running' (they become 'lost' much later)
    (killed,) = await rows(db, "SELECT now() AS at")
    await asyncio.sleep(7)  # at least three occurrences of each schedule are missed
    second = await start_scheduler(agents, db)
    try:
        await asyncio.sleep(3)
        await execute(db, "UPDATE schedules SET enabled = false")
        await eventually(lambda: _none_running(db, since=killed.at), seconds=20)
    finally:
        await stop(second)
    repo = ScheduleRepository(db.sessionmaker)
    for schedule in await repo.listing():
        runs = await repo.runs(schedule.id)
        dues = [r.due_at for r in runs]
        assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(dues)), "a gap"
        runs = [r for r in runs if r.status != "running"]  # cut off by the kill
        # the first claim after the restart took every missed occurrence at once (one claim time)
        claims: dict[object, list[str]] = {}
        for run in runs:
            claims.setdefault(run.started_at, []).append(f"{run.trigger}/{run.status}")
        catch_up = max(claims.values(), key=len)
        assert len(catch_up) >= 3, claims
        if schedule.misfire == "all":
            assert all(s == "catch-up/ok" for s in catch_up if not s.startswith("schedule")), catch_up
        elif schedule.misfire == "once":
            ran = [s for s in catch_up if s.endswith("/ok")]
            assert len(ran) == 1 and catch_up.count("schedule/skipped: misfire") == len(catch_up) - 1, (
                catch_up
            )
        else:
            assert "catch-up/ok" not in catch_up and catch_up.count("schedule/skipped: misfire") >= 2, (
                catch_up
            )
