"""Concurrency limits hold with a slow command (global 1, per schedule 1) on both buses: runs never
overlap, the occurrences that would have are recorded as ``skipped: concurrency``."""

from __future__ import annotations

import asyncio
import itertools

from pydantic import BaseModel, Field

from agents import BUILTIN_AGENTS, Agent, AgentWorker, CallContext
from assistant.runtime import Runtime
from assistant.scheduler import Scheduler
from settings import Settings
from storage import Database
from tests.scheduler.conftest import Done, create_schedule, rows
from tools import Risk, ToolDefinition
from tools.builtin.base import ToolInput


class NapInput(ToolInput):
    seconds: float = Field(ge=0, le=10, description="How long to take.")


NAP = ToolDefinition(
    name="napper_nap", description="Take a while.", agent="napper", input_model=NapInput,
    output_model=Done, risk=Risk.WRITE,
)  # fmt: skip


class Napper(Agent):
    """A slow command: counts how many of its calls are under way at once."""

    name = "napper"
    description = "Slow on purpose."

    def __init__(self, services: object) -> None:
        super().__init__(services)  # type: ignore[arg-type]
        self.now = self.most = self.calls = 0
        self.register(NAP, self.nap)

    async def nap(self, args: NapInput, ctx: CallContext) -> BaseModel:
        self.now, self.calls = self.now + 1, self.calls + 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(args.seconds)
        finally:
            self.now -= 1
        return Done(text="Rested.")


async def test_slow_runs_never_exceed_the_limits(db: Database, bus_settings: Settings) -> None:
    async with Runtime(bus_settings, agents=list(BUILTIN_AGENTS), database=db) as rt:
        assert rt.services is not None and rt.kommandant is not None
        rt.services.catalog.register(NAP)
        napper = Napper(rt.services)
        async with AgentWorker(napper):
            command = [{"tool": NAP.name, "arguments": {"seconds": 1.5}}]
            for name in ("a", "b"):
                await create_schedule(rt.services.bus, name=name, when={"every_seconds": 1}, command=command)
            async with Scheduler(rt.kommandant, global_limit=1):
                await asyncio.sleep(6)
            await asyncio.sleep(0.1)
    assert napper.most == 1 and napper.calls >= 2
    runs = await rows(db, "SELECT status, started_at, finished_at FROM scheduled_runs ORDER BY started_at")
    done = [r for r in runs if r.status == "ok"]
    assert len(done) >= 2
    for earlier, later in itertools.pairwise(done):
        assert earlier.finished_at <= later.started_at  # one at a time over both schedules
    assert sum(r.status == "skipped: concurrency" for r in runs) >= 4
    assert all(r.status in {"ok", "skipped: concurrency", "running"} for r in runs), runs
