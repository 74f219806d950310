"""`kommandant up --workers`: the distributed layout on one machine. The web front door runs in the `up`
process and each agent in its own `kommandant worker` child, on the real RabbitMQ and the test Postgres;
a command sent over MCP/HTTP is answered by the worker process, and SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from bus import Topology
from bus.rabbit import delete_topology
from storage import Database
from storage.registry import AgentRegistry
from tests.mcp.conftest import SessionHost, free_port, http_opener, make_token

pytestmark = pytest.mark.rabbit
ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (from /proc: psutil is not a dependency)."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether a process with this pid still exists."""
    return Path(f"/proc/{pid}").exists()


async def test_up_with_workers_answers_through_a_worker_process(
    db: Database, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        KOMMANDANT_DATABASE_URL=db.url,
        KOMMANDANT_AMQP_URL=amqp_url,
        KOMMANDANT_BUS_PREFIX=bus_prefix,
        KOMMANDANT_DATA_DIR=str(tmp_path / "data"),
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_LOG_LEVEL="WARNING",
        KOMMANDANT_HEARTBEAT_INTERVAL="0.5",
        KOMMANDANT_WORKER_STOP_GRACE="5",
        KOMMANDANT_NO_WORKER_GRACE="20",  # the worker may still be starting when the first call comes
        PYTHONPATH=str(ROOT),
    )
    log = (tmp_path / "up.log").open("wb")  # a file, not a pipe: nobody reads while the server runs
    up = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assistant.cli", "up", "--workers", "--agent", "system", "--port", str(port),
        cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(90):
            while True:
                assert up.returncode is None, (tmp_path / "up.log").read_text()[-3000:]
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

        token = await make_token(db, "up-workers", "operator", "ana")
        host = SessionHost(http_opener(f"http://127.0.0.1:{port}/mcp", token), None)
        try:
            result = await (await host.value()).call_tool("ask", {"text": "what's the status"})
        finally:
            await host.close()
        assert result.structuredContent is not None, result
        assert [t["tool"] for t in result.structuredContent["tools"]] == ["system_status"]
        assert result.structuredContent["tools"][0]["ok"], result.structuredContent

        agents = {a.name: a for a in await AgentRegistry(db.sessionmaker).agents()}
        assert set(agents) == {"system"}  # no agent runs inside the web process
        pids = {i.pid for i in agents["system"].instances}
        assert len(pids) == 1 and up.pid not in pids
        assert pids <= children(up.pid)  # the worker is a child process of `up`

        up.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await up.wait() == 0
        assert not children(up.pid) and not any(alive(pid) for pid in pids)
        stopped = {i.status for i in (await AgentRegistry(db.sessionmaker).agents())[0].instances}
        assert stopped == {"stopped"}  # the worker drained and signed off, it was not killed
    finally:
        if up.returncode is None:
            up.kill()
            await up.wait()
        log.close()
        await delete_topology(amqp_url, Topology(bus_prefix), ["system"])
