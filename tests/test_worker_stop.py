"""A graceful worker: `kommandant worker` on SIGTERM stops taking calls at once, finishes the call under
way (a bridged MCP tool that naps) within its grace period, then exits 0. Real worker process, real
RabbitMQ, real Postgres."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bus import NoWorker, RabbitBus, ToolCall, Topology
from bus.rabbit import delete_topology
from storage import Database

pytestmark = pytest.mark.rabbit
ROOT = Path(__file__).resolve().parents[1]
GRACE = 8.0
NAP = 1.5

SLOW_SERVER = """
import asyncio, sys
from pathlib import Path
from mcp.server.fastmcp import FastMCP

server = FastMCP("slowpoke")

@server.tool()
async def nap(seconds: float) -> str:
    \"\"\"Sleep, then say so.\"\"\"
    Path(sys.argv[1]).write_text("napping")
    await asyncio.sleep(seconds)
    return f"slept {seconds:g} s"

server.run()
"""


def worker_env(db: Database, amqp_url: str, prefix: str, data_dir: Path) -> dict[str, str]:
    """A `kommandant` subprocess on the test database and broker, under this test's own prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        KOMMANDANT_DATABASE_URL=db.url,
        KOMMANDANT_AMQP_URL=amqp_url,
        KOMMANDANT_BUS_PREFIX=prefix,
        KOMMANDANT_DATA_DIR=str(data_dir),
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_LOG_LEVEL="WARNING",
        KOMMANDANT_WORKER_STOP_GRACE=str(GRACE),
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest_asyncio.fixture(loop_scope="session")
async def client(amqp_url: str, bus_prefix: str) -> AsyncIterator[RabbitBus]:
    bus = RabbitBus(amqp_url, prefix=bus_prefix, no_worker_grace=1.0)
    bus.served_ttl = 0.0  # ask the broker before every call: the test watches the consumer leave
    async with bus:
        yield bus
    await delete_topology(amqp_url, Topology(bus_prefix), ["slowpoke"])


async def test_sigterm_finishes_the_call_under_way_and_exits_0(
    db: Database, amqp_url: str, bus_prefix: str, client: RabbitBus, tmp_path: Path
) -> None:
    server, mark = tmp_path / "slow_server.py", tmp_path / "napping"
    server.write_text(SLOW_SERVER)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assistant.cli", "worker",
        "--mcp", f"{sys.executable} {server} {mark}", "--mcp-name", "slowpoke",
        cwd=ROOT, env=worker_env(db, amqp_url, bus_prefix, tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            line = await process.stdout.readline()
        assert line.startswith(b"Serving slowpoke"), line
        call = ToolCall.create("slowpoke__nap", {"seconds": NAP}, timeout=30)
        in_flight = asyncio.create_task(client.call("slowpoke", call))
        async with asyncio.timeout(10):
            while True:  # the outside server writes the mark when the nap begins
                if mark.exists():
                    break
                await asyncio.sleep(0.02)

        process.send_signal(signal.SIGTERM)
        stopped_at = time.perf_counter()
        await asyncio.sleep(0.3)  # the consumer is cancelled at once
        with pytest.raises(NoWorker, match="slowpoke agent"):
            await client.call("slowpoke", ToolCall.create("slowpoke__nap", {"seconds": 0}, timeout=30))

        result = await in_flight  # the call under way still gets its answer
        assert not result.is_error and result.text == f"slept {NAP:g} s"
        async with asyncio.timeout(GRACE + 5):
            code = await process.wait()
        assert code == 0, (await process.stderr.read()).decode()[-2000:] if process.stderr else code
        assert time.perf_counter() - stopped_at < GRACE
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
