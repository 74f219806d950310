"""Scale-out: throughput of a bridged MCP tool served by 1, 2, 4 and 8 ``kommandant worker`` processes.

python bench/scale.py [--quick] [--seconds 12] [--url amqp://…]      # prints JSON

Each worker is a real ``kommandant worker --mcp`` process at prefetch 1 (``KOMMANDANT_WORKER_CONCURRENCY=1``)
on RabbitMQ and Postgres (``KOMMANDANT_DATABASE_URL``, else an embedded server), attached to its own copy
of a small outside MCP server (this file, ``--mcp-server``) with two tools:

- ``nap``: waits 50 ms (I/O-bound). Served by 1, 2, 4 and 8 workers; targets: >= 1.9x the 1-worker
  throughput at 2, >= 3.6x at 4, >= 6.5x at 8;
- ``burn``: spins 20 ms of CPU (CPU-bound). Served by 1 and 2 workers; no target: the machine's cores
  are the ceiling (2 cores: at most 2x, less the CPU the caller, the broker and Postgres take).

Workers are added between phases (1, then 2, 4, 8), never restarted. In each phase ``3 x workers``
closed-loop callers in this process keep every worker's next call waiting in the queue; calls/s counts
the calls that finished inside the measured window, after a warm-up. Every ratio's baseline is the
1-worker figure of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
# the script folder is on sys.path first; keep it off so no file there (bench/bus.py) shadows a package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SELF = str(Path(__file__).resolve())
AGENT = "scalebench"
NAP_SECONDS = 0.05
BURN_MS = 20.0
WORKER_COUNTS = (1, 2, 4, 8)
CPU_WORKER_COUNTS = (1, 2)
TARGETS = {2: 1.9, 4: 3.6, 8: 6.5}
CALLERS_PER_WORKER = 3
"""Closed-loop callers per worker: one call at each worker, the others ready in the queue behind it."""
START_TIMEOUT = 180.0
STOP_GRACE = 5.0


def mcp_server() -> None:
    """``--mcp-server``: the outside MCP server each worker attaches over stdio."""
    from mcp.server.fastmcp import FastMCP

    server = FastMCP(AGENT, log_level="WARNING")

    @server.tool()
    async def nap(seconds: float) -> str:
        """Wait, then say so (an I/O-bound tool)."""
        await asyncio.sleep(seconds)
        return f"slept {seconds:g} s"

    @server.tool()
    async def burn(ms: float) -> str:
        """Spin the CPU for this many milliseconds of this process's CPU time (a CPU-bound tool)."""
        until = time.process_time() + ms / 1000
        spins = 0
        while time.process_time() < until:
            spins += 1
        return f"burned {ms:g} ms ({spins} spins)"

    server.run()


@dataclass
class Worker:
    """One ``kommandant worker`` process; its stderr goes to ``log``."""

    process: asyncio.subprocess.Process
    log: Path


@dataclass
class Phase:
    """What one measured phase saw."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def worker_env(database_url: str, amqp_url: str, prefix: str, data_dir: Path) -> dict[str, str]:
    """A worker's environment: this run's database, broker and prefix, prefetch 1, no LLM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        KOMMANDANT_DATABASE_URL=database_url,
        KOMMANDANT_AMQP_URL=amqp_url,
        KOMMANDANT_BUS_PREFIX=prefix,
        KOMMANDANT_DATA_DIR=str(data_dir),
        KOMMANDANT_AUDIT_KEY=secrets.token_hex(32),  # one key for all, not one file each writes at start
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_LOG_LEVEL="WARNING",
        KOMMANDANT_WORKER_CONCURRENCY="1",
        KOMMANDANT_WORKER_STOP_GRACE=str(STOP_GRACE),
        PYTHONPATH=str(ROOT),
    )
    return env


async def start_worker(env: dict[str, str], log: Path) -> Worker:
    """Start one worker and return once it says it serves the bridged tools."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "assistant.cli", "worker",
            "--mcp", f"{sys.executable} {SELF} --mcp-server", "--mcp-name", AGENT,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    worker = Worker(process, log)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            line = await process.stdout.readline()
    except TimeoutError:
        line = b""
    if not line.startswith(b"Serving"):
        await stop_workers([worker])
        tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
        raise RuntimeError(f"a worker did not start (said {line!r}); its stderr ends:\n{tail}")
    return worker


async def add_workers(workers: list[Worker], count: int, env: dict[str, str], folder: Path) -> None:
    """Start workers (at once) until there are ``count``; every one started joins ``workers``."""
    logs = [folder / f"worker-{n}.log" for n in range(len(workers), count)]
    started = await asyncio.gather(*(start_worker(env, log) for log in logs), return_exceptions=True)
    workers += [w for w in started if isinstance(w, Worker)]
    for outcome in started:
        if isinstance(outcome, BaseException):
            raise outcome


async def stop_workers(workers: list[Worker]) -> None:
    """SIGTERM every worker (each drains its call under way), SIGKILL any still running after the grace."""
    for worker in workers:
        if worker.process.returncode is None:
            worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            async with asyncio.timeout(STOP_GRACE + 10):
                await worker.process.wait()
        except TimeoutError:
            worker.process.kill()
            await worker.process.wait()


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User + system CPU seconds of these processes, and of all their children."""
    import psutil

    def used(process: psutil.Process) -> float:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            return float(times.user + times.system)
        return 0.0

    own = children = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(pid)
            own += used(parent)
            children += sum(used(child) for child in parent.children(recursive=True))
    return own, children


def service_pids(pgdata: Path) -> dict[str, list[int]]:
    """RabbitMQ's Erlang VM (whatever else uses the broker counts too) and this run's embedded Postgres
    server (its backends are its children; none when ``KOMMANDANT_DATABASE_URL`` points elsewhere)."""
    import psutil

    found: dict[str, list[int]] = {"rabbitmq": [], "postgres": []}
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "beam.smp":
            found["rabbitmq"].append(process.pid)
        elif str(pgdata) in " ".join(process.info["cmdline"] or ()):
            found["postgres"].append(process.pid)
    return found


def cpu_snapshot(workers: list[Worker], services: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by the workers, their MCP servers, this process (the caller) and the
    broker and database."""
    own, children = cpu_seconds([w.process.pid for w in workers])
    snapshot = {"workers": own, "mcp_servers": children, "caller": time.process_time()}
    for name, pids in services.items():
        snapshot[name] = sum(cpu_seconds(pids)) if pids else float("nan")
    return snapshot


async def measure(
    bus: Any,
    workers: list[Worker],
    services: dict[str, list[int]],
    call: tuple[str, dict[str, float]],
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    """Calls/s of ``call`` (tool, arguments) with ``CALLERS_PER_WORKER x workers`` closed-loop callers."""
    import psutil

    from bus import ToolCall

    tool, arguments = call
    phase = Phase()
    window: list[float] = []  # [start, end] once the warm-up is over
    stop = asyncio.Event()

    async def caller() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            result = await bus.call(AGENT, ToolCall.create(tool, arguments, timeout=60))
            ended = time.perf_counter()
            if result.is_error:
                phase.errors.append(result.text)
            elif window and window[0] <= ended <= window[1]:
                phase.latencies.append((ended - began) * 1000)

    callers = [asyncio.create_task(caller()) for _ in range(CALLERS_PER_WORKER * len(workers))]
    try:
        await asyncio.sleep(warmup)
        psutil.cpu_percent()  # starts the machine-wide CPU window
        before = cpu_snapshot(workers, services)
        began = time.perf_counter()
        window[:] = [began, began + seconds]
        await asyncio.sleep(seconds)
        after = cpu_snapshot(workers, services)
        machine = psutil.cpu_percent()
    finally:
        stop.set()
        done = await asyncio.gather(*callers, return_exceptions=True)
    failures = [repr(e) for e in done if isinstance(e, BaseException)]
    if failures or phase.errors:
        raise RuntimeError(f"{tool} failed with {len(workers)} workers: {(failures + phase.errors)[:3]}")
    calls = len(phase.latencies)
    return {
        "workers": len(workers),
        "callers": len(callers),
        "calls": calls,
        "seconds": seconds,
        "calls_per_s": round(calls / seconds, 1),
        "p50_ms": round(statistics.median(phase.latencies), 1) if calls else None,
        "cpu_ms_per_call": {name: per_call(after[name] - before[name], calls) for name in before},
        "machine_cpu_percent": machine,
    }


def per_call(cpu: float, calls: int) -> float | None:
    """CPU milliseconds per call (None when nothing was measured)."""
    return round(cpu * 1000 / calls, 2) if calls and cpu == cpu else None


def with_ratios(runs: list[dict[str, Any]], targets: dict[int, float]) -> list[dict[str, Any]]:
    """Each run's ratio to the 1-worker run of the same series, and its target and pass/fail if any."""
    baseline = runs[0]["calls_per_s"]
    for run in runs:
        run["ratio"] = round(run["calls_per_s"] / baseline, 2) if baseline else None
        target = targets.get(run["workers"])
        if target is not None:
            run["target_ratio"] = target
            run["result"] = "pass" if run["ratio"] is not None and run["ratio"] >= target else "fail"
    return runs


@contextlib.asynccontextmanager
async def database_url(folder: Path) -> AsyncIterator[str]:
    """``KOMMANDANT_DATABASE_URL`` if set, else an embedded Postgres in ``folder`` (migrated either way)."""
    from storage import Database

    url = os.environ.get("KOMMANDANT_DATABASE_URL")
    async with Database(url) if url else Database(data_dir=folder / "pgdata") as db:
        yield db.url


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bus import RabbitBus, Topology
    from bus.rabbit import delete_topology

    seconds, warmup = (3.0, 1.0) if args.quick else (args.seconds, 2.0)
    prefix = f"kbenchscale{uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="kommandant-bench-scale-"))
    workers: list[Worker] = []
    io_runs: list[dict[str, Any]] = []
    cpu_runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        async with database_url(folder) as url, RabbitBus(args.url, prefix=prefix, call_timeout=60) as bus:
            env = worker_env(url, args.url, prefix, folder / "data")
            for count in WORKER_COUNTS:
                await add_workers(workers, count, env, folder)
                services = service_pids(folder / "pgdata")
                nap = (f"{AGENT}__nap", {"seconds": NAP_SECONDS})
                io_runs.append(await measure(bus, workers, services, nap, warmup, seconds))
                if count in CPU_WORKER_COUNTS:
                    burn = (f"{AGENT}__burn", {"ms": BURN_MS})
                    cpu_runs.append(await measure(bus, workers, services, burn, warmup, seconds))
    finally:
        await stop_workers(workers)
        with contextlib.suppress(Exception):
            await delete_topology(args.url, Topology(prefix), [AGENT])
        shutil.rmtree(folder, ignore_errors=True)
    io_runs, cpu_runs = with_ratios(io_runs, TARGETS), with_ratios(cpu_runs, {})
    cores = os.cpu_count() or 1
    return {
        "machine": {"python": platform.python_version(), "cpus": cores, "load_avg_1m": os.getloadavg()[0]},
        "settings": {"quick": args.quick, "seconds": seconds, "warmup_seconds": warmup, "prefetch": 1},
        "note": "calls are bus calls (RabbitBus, persistent and confirmed, results stored in Postgres) to "
        "real `kommandant worker --mcp` processes, each with its own stdio MCP server; ratios are to the "
        "1-worker figure of the same run; cpu_ms_per_call: the worker processes, their MCP servers, "
        "the caller (this process), RabbitMQ (with any other traffic it carries meanwhile) and the "
        "embedded Postgres (null with KOMMANDANT_DATABASE_URL)",
        "io_bound": {
            "tool": f"{AGENT}__nap",
            "server_ms_per_call": NAP_SECONDS * 1000,
            "ideal_calls_per_s_per_worker": round(1 / NAP_SECONDS, 1),
            "runs": io_runs,
        },
        "cpu_bound": {
            "tool": f"{AGENT}__burn",
            "cpu_ms_per_call": BURN_MS,
            "cores": cores,
            "ceiling": f"{cores} cores: at most {min(cores, 2)}x at 2 workers and "
            f"{round(cores * 1000 / BURN_MS)} calls/s in all, less the CPU of the caller, RabbitMQ, Postgres "
            "and each call's own overhead",
            "runs": cpu_runs,
        },
        "met": all(run.get("result", "pass") == "pass" for run in io_runs),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("KOMMANDANT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds of each phase")
    parser.add_argument("--quick", action="store_true", help="3 s phases: a check that it runs, not figures")
    parser.add_argument("--mcp-server", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.mcp_server:
        mcp_server()
    else:
        print(json.dumps(asyncio.run(run(arguments)), indent=2))
