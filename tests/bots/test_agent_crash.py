"""SIGKILL the bot executor (`kommandant worker bots`) while two bots run, start it again: no orphan is
left, the bots that should run run again, and the stale runs are closed with a reason."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from agents.bots.agent import STALE_REASON, executor_queue
from bus import RabbitBus, ToolCall, Topology
from bus.rabbit import delete_topology
from settings import Settings
from storage import Database, PostgresResultStore
from storage.bots import BotConfig, BotRegistry

pytestmark = pytest.mark.rabbit

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
PARENT = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', sys.argv[1]])\n"
    "while True: time.sleep(0.2)"
)
SLEEPER = "import time\nwhile True: time.sleep(0.2)"


def marked(marker: str) -> set[int]:
    """Live (not zombie) processes whose command line carries ``marker``."""
    found = set()
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and marker in (process.info["cmdline"] or []):
            found.add(process.pid)
    return found


async def until(check: Any, seconds: float = 60.0, shown: Any = None) -> Any:
    """Poll ``check`` until it returns something truthy; on timeout, fail showing ``shown()``."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if value := await check():
                    return value
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"still not so after {seconds} s: {shown() if shown else ''}") from None


async def processes(marker: str, count: int) -> set[int]:
    """Wait until exactly ``count`` live processes carry ``marker``; their pids."""

    async def check() -> set[int] | None:
        found = marked(marker)
        return found if len(found) == count else None

    return set(await until(check, 60, lambda: marked(marker)))


class Executor:
    """`kommandant worker bots` as a subprocess on the test database and broker."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            PY, "-m", "assistant.cli", "worker", "bots", env=self.env, cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def sigkill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> str:
        """SIGTERM (a graceful stop) and its stderr."""
        assert self.process is not None and self.process.stderr is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.process.communicate(), 60)
        return err.decode(errors="replace")


@pytest_asyncio.fixture(loop_scope="session")
async def caller(db: Database, amqp_url: str, bus_prefix: str) -> AsyncIterator[RabbitBus]:
    # The test starts the executor itself and calls at once: a call waits for it to come up (and, after the
    # crash, to reconcile) instead of hearing after the default 2 s that no worker serves the bots agent.
    async with RabbitBus(
        amqp_url, prefix=bus_prefix, result_store=PostgresResultStore(db.sessionmaker), no_worker_grace=60
    ) as bus:
        yield bus
    await delete_topology(amqp_url, Topology(bus_prefix), ["bots", executor_queue(Settings().bots_host)])


async def test_sigkill_the_executor_then_start_it_again(
    db: Database, caller: RabbitBus, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    marker = f"crash-{uuid.uuid4().hex[:8]}"
    registry = BotRegistry(db.sessionmaker)
    await registry.add(BotConfig(name="parent", command=(PY, "-c", PARENT, marker)))
    await registry.add(BotConfig(name="single", command=(PY, "-c", SLEEPER, marker)))
    await registry.add(BotConfig(name="idle", command=(PY, "-c", SLEEPER, marker)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env |= {
        "KOMMANDANT_DATABASE_URL": db.url,
        "KOMMANDANT_AMQP_URL": amqp_url,
        "KOMMANDANT_BUS_PREFIX": bus_prefix,
        "KOMMANDANT_DATA_DIR": str(tmp_path / "data"),
        "KOMMANDANT_BOTS_GRACE": "1",
        "KOMMANDANT_LLM_MODEL": "",
    }
    executor = Executor(env)

    async def call(tool: str, **arguments: Any) -> dict[str, Any]:
        request = ToolCall.create(tool, arguments, timeout=90, user="ann", channel="cli", role="admin")
        result = await caller.call("bots", request)
        assert not result.is_error and result.result.structuredContent is not None, result.text
        return result.result.structuredContent

    await executor.start()
    try:
        await call("bots_start", name="parent")
        await call("bots_start", name="single")
        before = await processes(marker, 3)

        await executor.sigkill()
        assert marked(marker) == before  # the crash left the bots running, unsupervised

        await executor.start()
        status = await call("bots_status")  # answered once the new executor has reconciled
        states = {bot["name"]: bot["status"] for bot in status["bots"]}
        assert states == {"parent": "running", "single": "running", "idle": "registered"}
        after = await processes(marker, 3)
        assert not after & before, "a leftover of the crashed executor is still running"
        assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie" for pid in before)

        for name in ("parent", "single"):

            async def settled(name: str = name) -> Any:
                runs = await registry.runs(name)
                return runs if [r.status for r in runs] == ["running", "exited"] else None

            runs = await until(settled, 20)
            assert runs[1].reason == f"{STALE_REASON}; its leftover processes were stopped"
            assert runs[1].ended_at is not None and runs[0].pid in after
        assert await registry.runs("idle") == []
    finally:
        stderr = await executor.stop()
        leftovers = marked(marker)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"bots outlived a graceful stop of the executor: {leftovers}\n{stderr[-2000:]}"
    assert {r.desired_state for r in await registry.all() if r.name != "idle"} == {"running"}
