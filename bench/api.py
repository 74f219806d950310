"""Control panel API: overview and calls latency under 20 concurrent clients beside a bare FastAPI route
returning the same JSON, and 50 event-stream clients for 60 s (every event delivered, server memory).

python bench/api.py [--clients 20] [--requests 25] [--sse-clients 50] [--sse-seconds 60]   # prints JSON

The server runs in a subprocess (``python bench/api.py serve``): the control panel mounted as in
``kommandant up`` (embedded Postgres, in-process bus and every agent, tests/panel's app without the
chat), plus ``/bare/overview`` and ``/bare/calls``: plain FastAPI routes returning a copy of what the
real routes answered, no auth, no database. Both are measured by the same clients in the same run,
alternating. The overview and a page of calls are reused for one second per person (dashboards poll
them; a page of calls only while no newer event arrived), so most of those requests here are answered
from that reuse; ``calls_uncached`` asks a different page every time, so each runs the query and the
serialisation (reported, not held to the target). Target: the API's p50 at most 2x the bare route's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ itself first on the path would shadow the project's packages (bench/bus.py is not bus/)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_RATIO = 2.0
MEASURED = (("overview", "/api/overview"), ("calls", "/api/calls?limit=50"))
"""The routes held to the target (as dashboards call them)."""


def serve(data_dir: Path, port: int) -> None:
    """The server process: the panel app, a bare route per measured one, an admin token in a file."""
    import uvicorn
    from fastapi.responses import Response

    from settings import Settings
    from storage import Database
    from storage.tokens import TokenRepository
    from tests.panel.conftest import panel_app

    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        amqp_url=None,
        host="127.0.0.1",
        port=port,
        llm_model="",
        log_level="WARNING",
    )

    async def token() -> str:
        async with Database.from_settings(settings) as db:
            return (await TokenRepository(db.sessionmaker).create("bench", role="admin", user_id="bench"))[1]

    (data_dir / "token").write_text(asyncio.run(token()))
    app = panel_app(settings)
    snapshots: dict[str, bytes] = {}

    @app.post("/bare/snapshot/{name}")
    async def snapshot(name: str, body: dict[str, Any]) -> dict[str, bool]:
        snapshots[name] = json.dumps(body).encode()
        return {"ok": True}

    @app.get("/bare/{name}")
    async def bare(name: str) -> Response:
        return Response(snapshots.get(name, b"{}"), media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _load(url: str, headers: dict[str, str], clients: int, requests: int) -> list[float]:
    """``clients`` concurrent clients, each ``requests`` sequential GETs of ``url``; latencies in ms.
    A ``{n}`` in ``url`` becomes a number no other request of the run uses (a page nobody asked for yet)."""
    import httpx

    numbers = iter(range(2**62, 0, -1))

    async def client() -> list[float]:
        took = []
        async with httpx.AsyncClient(headers=headers, timeout=60) as http:
            for _ in range(requests):
                started = time.perf_counter()
                answer = await http.get(url.replace("{n}", str(next(numbers))))
                answer.raise_for_status()
                took.append((time.perf_counter() - started) * 1000)
        return took

    return [t for part in await asyncio.gather(*(client() for _ in range(clients))) for t in part]


async def _latency(base: str, headers: dict[str, str], clients: int, requests: int) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        for name, path in MEASURED:
            body = (await http.get(base + path)).json()
            await http.post(f"{base}/bare/snapshot/{name}", json=body)
    # calls_uncached: every request a different ``before`` (above every id, so the same 50 rows), so none
    # is answered from the one-second reuse: the query and serialisation themselves, beside the same bare JSON
    measured = (*MEASURED, ("calls_uncached", "/api/calls?limit=50&before={n}"))
    figures: dict[str, Any] = {}
    for name, path in measured:
        api: list[float] = []
        bare: list[float] = []
        await _load(base + path, headers, clients, 3)  # warm-up
        for _ in range(2):  # alternate, so drift on a shared machine hits both
            api += await _load(base + path, headers, clients, requests)
            bare += await _load(f"{base}/bare/{name.removesuffix('_uncached')}", headers, clients, requests)
        figures[name] = {
            "p50_ms": round(statistics.median(api), 2),
            "p99_ms": round(_percentile(api, 0.99), 2),
            "bare_p50_ms": round(statistics.median(bare), 2),
            "bare_p99_ms": round(_percentile(bare, 0.99), 2),
            "ratio_p50": round(statistics.median(api) / statistics.median(bare), 2),
            "requests": len(api),
        }
    return figures


async def _sse(base: str, headers: dict[str, str], clients: int, seconds: float, pid: int) -> dict[str, Any]:
    """``clients`` streams open for ``seconds`` while a turn runs every half second; which event ids each
    stream got, and the server's RSS meanwhile."""
    import httpx
    import psutil

    got: list[list[int]] = [[] for _ in range(clients)]
    connected = asyncio.Event()
    opened = 0
    stop = asyncio.Event()

    async def listen(index: int) -> None:
        nonlocal opened
        async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(10, read=None)) as http:  # noqa: SIM117
            async with http.stream("GET", f"{base}/api/events") as response:
                opened += 1
                if opened == clients:
                    connected.set()
                async for line in response.aiter_lines():
                    if line.startswith("id:"):
                        got[index].append(int(line[3:].strip()))
                    if stop.is_set():
                        return

    process = psutil.Process(pid)
    tasks = [asyncio.create_task(listen(i)) for i in range(clients)]
    await asyncio.wait_for(connected.wait(), 60)
    rss = [process.memory_info().rss]
    turns = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        next_sample = time.monotonic() + 5
        while time.monotonic() < deadline:
            answer = await http.post(f"{base}/api/turns", json={"text": "what is the status"})
            turns += answer.json()["complete"]
            await asyncio.sleep(0.5)
            if time.monotonic() >= next_sample:
                rss.append(process.memory_info().rss)
                next_sample += 5
        await asyncio.sleep(3)  # the last events reach every stream (pings every 15 s keep them reading)
        stop.set()
        await http.post(f"{base}/api/turns", json={"text": "what is the status"})  # wakes each stream
    await asyncio.wait(tasks, timeout=20)
    for task in tasks:
        task.cancel()
    rss.append(process.memory_info().rss)
    start = max(ids[0] for ids in got if ids)
    end = min(ids[-1] for ids in got if ids)
    windows = [[i for i in ids if start <= i <= end] for ids in got]
    union = sorted(set().union(*map(set, windows)))
    complete = sum(window == union for window in windows)
    mb = [round(r / 2**20, 1) for r in rss]
    return {
        "clients": clients,
        "seconds": seconds,
        "turns": turns,
        "events_in_common_window": len(union),
        "clients_with_every_event_once": complete,
        "rss_mb_start": mb[0],
        "rss_mb_end": mb[-1],
        "rss_mb_max": max(mb),
        "rss_mb_samples": mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve"])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--sse-clients", type=int, default=50)
    parser.add_argument("--sse-seconds", type=float, default=60.0)
    parser.add_argument("--turns", type=int, default=100, help="turns run first, so /api/calls has rows")
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.data_dir, args.port)
        return
    import httpx

    with tempfile.TemporaryDirectory(prefix="kommandant-bench-api-") as tmp:
        data_dir, port = Path(tmp), _free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "serve", "--data-dir", str(data_dir), "--port", str(port)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and server.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=2).json().get("status") == "ok":
                        break
                time.sleep(0.5)
            headers = {"Authorization": f"Bearer {(data_dir / 'token').read_text().strip()}"}
            for _ in range(args.turns):
                httpx.post(
                    f"{base}/api/turns", headers=headers, json={"text": "what is the status"}, timeout=60
                )
            latency = asyncio.run(_latency(base, headers, args.clients, args.requests))
            sse = asyncio.run(_sse(base, headers, args.sse_clients, args.sse_seconds, server.pid))
        finally:
            server.terminate()
            server.wait(30)
    result = {
        "benchmark": "control panel API",
        "clients": args.clients,
        "latency": latency,
        "target_ratio_p50": TARGET_RATIO,
        "meets_target": {k: latency[k]["ratio_p50"] <= TARGET_RATIO for k, _ in MEASURED},
        "sse": sse,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
