"""MCP tool-call latency: Kommandant's MCP server beside a bare FastMCP server with the same tool, one run.

python bench/mcp_calls.py [--calls 200]      # prints JSON

Both servers serve ``system_status`` (read the agent registry from the same Postgres and return the same
structured ``SystemStatus``), over stdio and over streamable HTTP, each as its own process, called
sequentially by the SDK's client. Kommandant adds what every call gets: token check (HTTP), policy,
write-ahead audit rows, and dispatch over the bus to the system agent. Target: p50 overhead <= 1.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the script folder is on sys.path first; keep it off so no file there can shadow an installed package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KOMMANDANT = str(Path(sys.executable).parent / "kommandant")
TARGET = 1.5
WARMUP = 20
WARMUP_SECONDS = 12.0
QUIET = open(os.devnull, "w")  # noqa: SIM115 - the servers' stderr, for the whole run
SELF = str(Path(__file__).resolve())


def bare_server(transport: str, database_url: str, port: int) -> None:
    """The baseline: FastMCP with one tool doing the same database read, nothing else."""
    from mcp.server.fastmcp import FastMCP

    from agents.system import agent_status
    from storage import Database
    from storage.registry import AgentRegistry
    from tools.builtin.system import SystemStatus

    server = FastMCP("bare", host="127.0.0.1", port=port, log_level="WARNING")
    holder: list[Database] = []

    async def system_status() -> SystemStatus:
        """How the system is."""
        if not holder:
            holder.append(await Database(database_url, migrate=False).__aenter__())
        agents = await AgentRegistry(holder[0].sessionmaker).agents()
        return SystemStatus(agents=[agent_status(a, fresh_within=timedelta(seconds=15)) for a in agents])

    system_status.__annotations__ = {"return": SystemStatus}  # this module defers annotations
    server.add_tool(system_status, name="system_status")

    server.run("stdio" if transport == "stdio" else "streamable-http")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def stdio_session(command: list[str], env: dict[str, str], cwd: str) -> AsyncIterator[Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=cwd)
    async with stdio_client(params, errlog=QUIET) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def http_session(
    command: list[str], env: dict[str, str], cwd: str, url: str, token: str | None
) -> AsyncIterator[Any]:
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        base = url.rsplit("/", 1)[0]
        async with httpx.AsyncClient() as probe, asyncio.timeout(90):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get(base + "/healthz")).status_code == 200 or (
                        await probe.post(url)
                    ).status_code in (400, 401, 406):
                        break
                await asyncio.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(url, http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    finally:
        process.terminate()
        await process.wait()


async def measure(session: Any, calls: int) -> dict[str, float]:
    # Steady state: Kommandant loads its embedding model in a background thread at start, and calls made
    # while that import holds the GIL take twice as long; both servers get the same warm-up.
    started = time.monotonic()
    done = 0
    while done < WARMUP or time.monotonic() - started < WARMUP_SECONDS:
        await session.call_tool("system_status", {})
        done += 1
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await session.call_tool("system_status", {})
        samples.append((time.perf_counter() - start) * 1000)
        if result.isError or not result.structuredContent:
            raise RuntimeError(f"system_status failed: {result.content}")
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
    }


async def main(calls: int) -> dict[str, Any]:
    from storage import Database
    from storage.tokens import TokenRepository

    folder = Path(tempfile.mkdtemp(prefix="kommandant-bench-mcp-"))
    try:
        async with Database(data_dir=folder / "pgdata") as db:
            url = db.url
            _, token = await TokenRepository(db.sessionmaker).create("bench", role="admin", user_id="bench")
            env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
            env.update(
                KOMMANDANT_DATABASE_URL=url,
                KOMMANDANT_DATA_DIR=str(folder),
                KOMMANDANT_LLM_MODEL="",
                KOMMANDANT_LOG_LEVEL="WARNING",
            )
            me = [sys.executable, SELF]
            report: dict[str, Any] = {"calls": calls, "tool": "system_status", "target_ratio_p50": TARGET}
            async with stdio_session([KOMMANDANT, "mcp"], env, str(folder)) as session:
                ours = await measure(session, calls)
            async with stdio_session([*me, "--bare", "stdio", "--database-url", url], env, str(folder)) as s:
                bare = await measure(s, calls)
            report["stdio"] = _compare(ours, bare)
            port = free_port()
            command = [KOMMANDANT, "mcp", "--http", "--port", str(port)]
            async with http_session(command, env, str(folder), f"http://127.0.0.1:{port}/mcp", token) as s:
                ours = await measure(s, calls)
            port = free_port()
            command = [*me, "--bare", "http", "--database-url", url, "--port", str(port)]
            async with http_session(command, env, str(folder), f"http://127.0.0.1:{port}/mcp", None) as s:
                bare = await measure(s, calls)
            report["http"] = _compare(ours, bare)
            report["met"] = all(report[t]["ratio_p50"] <= TARGET for t in ("stdio", "http"))
            return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _compare(ours: dict[str, float], bare: dict[str, float]) -> dict[str, Any]:
    return {"kommandant": ours, "bare_fastmcp": bare, "ratio_p50": round(ours["p50_ms"] / bare["p50_ms"], 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--bare", choices=["stdio", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_server(args.bare, args.database_url, args.port)
    else:
        print(json.dumps(asyncio.run(main(args.calls)), indent=2))
