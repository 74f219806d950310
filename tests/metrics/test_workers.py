"""Two real ``kommandant worker`` processes on RabbitMQ sharing ``PROMETHEUS_MULTIPROC_DIR``: each one's
``/metrics`` (bearer token, Host check) shows the calls both served, added up; their logs are JSON lines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from bus import RabbitBus, ToolCall
from bus.rabbit import Topology, delete_topology
from settings import Settings
from tests.metrics.conftest import samples, total
from tools import builtin_catalog

KOMMANDANT = str(Path(sys.executable).with_name("kommandant"))
TOKEN = "metrics-test-token-0123"
CALLS = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stopped(worker: subprocess.Popen[bytes]) -> str:
    """The worker's log once it stopped (after draining), killed if it does not within 30 s."""
    try:
        return worker.communicate(timeout=30)[1].decode()
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"worker {worker.pid} did not stop on SIGINT") from None


async def _wait_ready(client: httpx.AsyncClient, url: str, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        try:
            answer = await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
            if total(samples(answer.text), "kommandant_agent_instances", agent="system") == len(workers):
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"{url} did not show {len(workers)} system replicas in time")


async def test_two_worker_processes_add_up(
    settings: Settings, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    ports = [_free_port(), _free_port()]
    assert settings.database_url is not None
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "KOMMANDANT_DATABASE_URL": settings.database_url.get_secret_value(),
        "KOMMANDANT_AMQP_URL": amqp_url,
        "KOMMANDANT_BUS_PREFIX": bus_prefix,
        "KOMMANDANT_DATA_DIR": str(settings.data_dir),
        "KOMMANDANT_HEARTBEAT_INTERVAL": "0.5",
        "KOMMANDANT_METRICS_TOKEN": TOKEN,
        "KOMMANDANT_LOG_FORMAT": "json",
        "KOMMANDANT_LLM_MODEL": "",
    }
    workers = [
        subprocess.Popen(  # noqa: ASYNC220 - starting a process does not wait for it
            [KOMMANDANT, "worker", "system"],
            env={**env, "KOMMANDANT_METRICS_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await _wait_ready(client, urls[0], workers)
            async with RabbitBus(amqp_url, prefix=bus_prefix) as bus:
                calls = [
                    ToolCall.create("help", {}, timeout=30, user=f"u{i}", side_effects=False)
                    for i in range(CALLS)
                ]
                results = await asyncio.gather(*(bus.call("system", call) for call in calls))
            assert not any(r.is_error for r in results)

            for url in urls:
                found = samples((await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})).text)
                assert (
                    total(found, "kommandant_worker_calls_total", agent="system", tool="help", outcome="ok")
                    == CALLS
                )
                assert (
                    total(found, "kommandant_worker_call_seconds_count", agent="system", tool="help") == CALLS
                )
                assert total(found, "kommandant_agent_instances", agent="system") == 2
                assert total(found, "kommandant_queue_depth", agent="system") == 0
            writers = {path.stem.rsplit("_", 1)[1] for path in multiproc.glob("counter_*.db")}
            assert writers == {str(w.pid) for w in workers}  # both processes served calls, and both count

            assert (await client.get(urls[0])).status_code == 401
            wrong = await client.get(urls[0], headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
            rebound = await client.get(
                urls[0], headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}
            )
            assert rebound.status_code == 421
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        logs = [_stopped(worker) for worker in workers]
        # a scrape counts the calls waiting for every agent it knows, which declares their queues too
        await delete_topology(amqp_url, Topology(bus_prefix), builtin_catalog().agents())
    for log in logs:
        lines = [json.loads(line) for line in log.splitlines() if line.strip()]
        serving = [line for line in lines if line["message"].startswith("agent system serving")]
        assert serving and serving[0]["logger"] == "agents.worker", log


def test_settings_name_the_metrics_port_and_token() -> None:
    configured = Settings(_env_file=None, metrics_port="9464", metrics_token="", log_format="json")
    assert configured.metrics_port == 9464 and configured.metrics_token is None
    assert Settings(_env_file=None, metrics_token=SecretStr("t0ken")).metrics_token is not None
