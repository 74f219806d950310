"""The distributed stack under load (issue 21): 50 chat sessions over the web server's real Socket.IO
socket for 60 s while every worker process is restarted one by one, and a web server that finishes the
turns under way when it is stopped.

Real processes throughout: ``kommandant up`` (web front door, no agent in it) and ``kommandant worker
memory reminders`` replicas on the local RabbitMQ and a database of this module's own on the test
Postgres; the clients are python-socketio's ``AsyncClient`` speaking Chainlit's events, as the page does.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import socketio
from sqlalchemy import text

from assistant.web.shutdown import LINGER_SECONDS
from bus import Topology
from bus.rabbit import delete_topology
from storage import Database
from storage.web_accounts import WebAccountRepository
from tests.mcp.conftest import free_port

pytestmark = pytest.mark.rabbit
ROOT = Path(__file__).resolve().parents[2]
AGENTS = ("memory", "reminders")
WORKERS = 2
"""Replicas, each serving every agent in ``AGENTS``: one always serves while the other restarts."""
SESSIONS = 50
USERS = 10
"""Accounts the sessions sign in as (five tabs each): logins are slow on purpose (scrypt)."""
LOAD_SECONDS = 60.0
TURN_TIMEOUT = 30.0
GRACE = 10.0
"""KOMMANDANT_WORKER_STOP_GRACE of every process here: the web server's too."""
MEMORY_GROWTH = 0.10
PASSWORD = "load-test-password-1"


def rss_bytes(pid: int) -> int:
    """The resident memory of a process, from /proc (psutil is not a dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat: other load shares the cores."""
    ticks = [float(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


@dataclass
class Child:
    """A ``kommandant`` subprocess whose output goes to a file (nobody reads a pipe while it runs)."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    async def wait_for_output(self, words: str, within: float) -> None:
        """Until the process printed ``words`` (a worker's "Serving" line: its consumers are up)."""
        async with asyncio.timeout(within):
            while words not in self.log.read_text(errors="replace"):
                assert self.process.returncode is None, f"{self.name} exited:\n{self.output()}"
                await asyncio.sleep(0.1)

    async def stop(self, within: float = GRACE + 10) -> int:
        """SIGTERM and wait for the exit status (SIGKILL if it outlives ``within`` seconds)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(within):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


@dataclass
class Stack:
    """The web front door and worker replicas of one distributed Kommandant, as real processes."""

    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    web: Child | None = None
    workers: list[Child] = field(default_factory=list)
    started: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def spawn(self, name: str, *args: str, log_level: str = "WARNING") -> Child:
        log = self.logs / f"{name}.log"
        env = {**self.env, "KOMMANDANT_LOG_LEVEL": log_level}
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "assistant.cli", *args,
                cwd=ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        return Child(name, process, log)

    async def start_web(self) -> Child:
        """``kommandant up`` (distributed mode: no agent in it), ready once /healthz says ok."""
        self.web = await self.spawn("web", "up", "--port", str(self.port), log_level="INFO")
        async with httpx.AsyncClient() as http, asyncio.timeout(120):
            while True:
                assert self.web.process.returncode is None, self.web.output()
                try:
                    if (await http.get(f"{self.url}/healthz")).json().get("status") == "ok":
                        return self.web
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

    async def start_worker(self) -> Child:
        """One more ``kommandant worker memory reminders`` replica, once it serves."""
        self.started += 1
        worker = await self.spawn(f"worker-{self.started}", "worker", *AGENTS)
        await worker.wait_for_output("Serving", within=120)
        self.workers.append(worker)
        return worker

    async def restart_worker(self, worker: Child) -> int:
        """Stop one replica (it finishes its calls under way), start its successor; the old exit status."""
        code = await worker.stop()
        self.workers.remove(worker)
        await self.start_worker()
        return code

    async def stop(self) -> None:
        """The web server first (it finishes its turns), then the workers, each draining."""
        for child in ([self.web] if self.web else []) + self.workers:
            await child.stop()


@dataclass
class Turn:
    """What one sent message got back."""

    text: str
    latency: float = 0.0
    reply: str | None = None
    started: list[str] = field(default_factory=list)
    """Tool steps shown as started in this turn."""
    tools: dict[str, bool] = field(default_factory=dict)
    """Tool steps finished in this turn: name -> ok."""
    tool_seconds: float = 0.0
    """How long its tool calls took, as the web server measured them (the rest is the web's own)."""
    problem: str = ""


class ChatTab:
    """One chat session over Chainlit's Socket.IO events, as the page speaks them."""

    def __init__(self, stack: Stack, cookie: str, user: str) -> None:
        self.stack, self.cookie, self.user = stack, cookie, user
        self.sio = socketio.AsyncClient(reconnection=False)
        self.ready = asyncio.Event()
        self.turn: Turn | None = None
        self.sent_at = 0.0
        self.finished = asyncio.Event()
        self.tool_started = asyncio.Event()
        """Set when a turn's first tool step is shown (its call is on its way to the agent)."""
        self.sio.on("window_message", self._on_window_message)
        for event in ("new_message", "stream_start", "update_message"):
            self.sio.on(event, self._on_step)
        self.sio.on("task_end", self._on_task_end)

    async def open(self) -> None:
        """Connect as the page does and wait until the chat has started (its page notice arrived)."""
        await self.sio.connect(
            self.stack.url,
            headers={"Cookie": self.cookie, "Origin": self.stack.url},
            auth={"sessionId": str(uuid.uuid4()), "clientType": "webapp", "userEnv": "{}"},
            transports=["websocket"],
            socketio_path="/chat/ws/socket.io",
            wait_timeout=30,
        )
        await self.sio.emit("connection_successful")
        async with asyncio.timeout(TURN_TIMEOUT):
            await self.ready.wait()

    async def close(self) -> None:
        await self.sio.emit("clear_session")
        await self.sio.disconnect()

    async def say(self, words: str) -> Turn:
        """Send a message; the turn ends with the reply and Chainlit's task_end."""
        turn = self.turn = Turn(words)
        self.finished.clear()
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        message = {"id": str(uuid.uuid4()), "name": self.user, "type": "user_message", "output": words}
        self.sent_at = time.perf_counter()
        await self.sio.emit(
            "client_message", {"message": {**message, "createdAt": now}, "fileReferences": []}
        )
        try:
            async with asyncio.timeout(TURN_TIMEOUT):
                await self.finished.wait()
        except TimeoutError:
            turn.problem = f"no reply within {TURN_TIMEOUT:g} s"
        if turn.reply is None and not turn.problem:
            turn.problem = "the turn ended without a reply"
        self.turn = None
        return turn

    async def _on_window_message(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("kind") == "kommandant.page" and "notice" in data:
            self.ready.set()

    async def _on_step(self, step: dict[str, Any]) -> None:
        """A message or step sent, streamed or updated: the reply (its last version counts, so the
        latency runs to the whole reply) and the tool steps' outcomes."""
        turn = self.turn
        if turn is None:
            return
        if step.get("type") == "assistant_message":
            turn.latency = time.perf_counter() - self.sent_at
            turn.reply = str(step.get("output", ""))
            if step.get("name") == "Error":  # Chainlit's own ErrorMessage: the hook raised
                turn.problem = f"error message: {turn.reply}"
        elif step.get("type") == "tool" and step.get("output"):  # a finished tool step (it has its result)
            turn.tools[str(step.get("name"))] = not step.get("isError")
            turn.tool_seconds += float((step.get("metadata") or {}).get("duration_ms", 0)) / 1000
        elif step.get("type") == "tool":
            turn.started.append(str(step.get("name")))
            self.tool_started.set()

    async def _on_task_end(self, *_: Any) -> None:
        if self.turn is not None and self.turn.reply is not None:
            self.finished.set()


@dataclass
class Conversation:
    """One session's commands: facts of its own, asked back, and the person's reminders."""

    number: int
    tab: ChatTab
    facts: dict[str, int] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def step(self) -> None:
        """One turn, chosen at random, checked: the expected tool ran and succeeded, the reply says it."""
        kind = random.choice(["remember", "recall", "list"] if self.facts else ["remember"])
        if kind == "remember":
            key, value = f"s{self.number}x{len(self.facts)}", random.randint(1000, 9999)
            turn = await self.tab.say(f"remember that load fact {key} is {value}")
            expected, shows = "memory_remember", None
            self.facts[key] = value
        elif kind == "recall":
            key = random.choice(list(self.facts))
            turn = await self.tab.say(f"what is my load fact {key}")
            expected, shows = "memory_recall", str(self.facts[key])
        else:
            turn = await self.tab.say("list my reminders")
            expected, shows = "reminders_list", None
        self.turns.append(turn)
        if not turn.problem and turn.tools != {expected: True}:
            turn.problem = f"tools {turn.tools}, expected {expected} to succeed; reply {turn.reply!r}"
        if not turn.problem and shows is not None and shows not in (turn.reply or ""):
            turn.problem = f"the reply does not say {shows}: {turn.reply!r}"
        if turn.problem:
            self.problems.append(f"session {self.number}, {turn.text!r}: {turn.problem}")

    async def run_until(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await self.step()


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database_url(database: Database) -> AsyncIterator[str]:
    """A database of this module's own on the session server, with the accounts the sessions use."""
    name = f"t_load_{uuid.uuid4().hex[:8]}"
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = database.engine.url.set(database=name).render_as_string(hide_password=False)
    async with Database(url) as db:  # migrates it
        accounts = WebAccountRepository(db.sessionmaker)
        for number in range(USERS):
            await accounts.add(f"load{number}", PASSWORD, "operator")
    yield url
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    database_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The web front door and ``WORKERS`` worker replicas, on this module's database and bus prefix."""
    prefix = f"kload{uuid.uuid4().hex[:8]}"
    data = tmp_path_factory.mktemp("load")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        KOMMANDANT_DATABASE_URL=database_url,
        KOMMANDANT_AMQP_URL=amqp_url,
        KOMMANDANT_BUS_PREFIX=prefix,
        KOMMANDANT_DATA_DIR=str(data / "data"),
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_HEARTBEAT_INTERVAL="1",
        KOMMANDANT_WORKER_STOP_GRACE=str(GRACE),
        KOMMANDANT_NO_WORKER_GRACE="20",  # a worker may still be starting when the first call comes
        PYTHONPATH=str(ROOT),
    )
    stack = Stack(env, data)
    try:
        await asyncio.gather(stack.start_web(), *(stack.start_worker() for _ in range(WORKERS)))
        yield stack
    finally:
        await stack.stop()
        await delete_topology(amqp_url, Topology(prefix), list(AGENTS))


async def login_cookies(stack: Stack, users: int = USERS) -> list[tuple[str, str]]:
    """(user, Cookie header) for the first ``users`` accounts, each signed in at /chat/login."""
    signed_in = []
    async with httpx.AsyncClient() as http:
        for number in range(users):
            user = f"load{number}"
            response = await http.post(
                f"{stack.url}/chat/login", data={"username": user, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            signed_in.append((user, f"access_token={response.cookies['access_token']}"))
    return signed_in


async def open_tabs(stack: Stack) -> list[ChatTab]:
    cookies = await login_cookies(stack)
    tabs = [ChatTab(stack, cookies[n % USERS][1], cookies[n % USERS][0]) for n in range(SESSIONS)]
    for batch in range(0, SESSIONS, 10):  # as people open the page: not all in one instant
        await asyncio.gather(*(tab.open() for tab in tabs[batch : batch + 10]))
    return tabs


async def rolling_restart(stack: Stack, start_in: float) -> list[int]:
    """Restart every worker replica one by one; their exit statuses."""
    await asyncio.sleep(start_in)
    return [await stack.restart_worker(worker) for worker in list(stack.workers)]


async def test_fifty_sessions_for_a_minute_with_a_rolling_restart_fail_no_turn(stack: Stack) -> None:
    assert stack.web is not None
    tabs = await open_tabs(stack)
    talks = [Conversation(n, tab) for n, tab in enumerate(tabs)]
    await asyncio.gather(*(t.step() for t in talks))  # warm-up: a fact each, so recalls find one
    warm = [turn for t in talks for turn in t.turns]
    before, cpu = rss_bytes(stack.web.process.pid), cpu_seconds(stack.web.process.pid)
    busy, total = machine_busy()
    for t in talks:
        t.turns.clear()

    started = time.monotonic()
    restart = asyncio.create_task(rolling_restart(stack, start_in=LOAD_SECONDS / 6))
    await asyncio.gather(*(t.run_until(started + LOAD_SECONDS) for t in talks))
    elapsed = time.monotonic() - started
    exits = await restart
    after, cpu = rss_bytes(stack.web.process.pid), cpu_seconds(stack.web.process.pid) - cpu
    busy, total = (now - then for now, then in zip(machine_busy(), (busy, total), strict=True))
    await asyncio.gather(*(tab.close() for tab in tabs))

    turns = [turn for t in talks for turn in t.turns]
    problems = [p for t in talks for p in t.problems]  # the warm-up's too
    latencies = [turn.latency for turn in turns if not turn.problem] or [float("nan")]
    in_tools = [turn.tool_seconds for turn in turns if not turn.problem] or [float("nan")]
    print(
        f"\nload: {SESSIONS} sessions, {len(turns)} turns in {elapsed:.1f} s "
        f"({len(turns) / elapsed:.1f} turns/s; {len(warm)} in the warm-up), {len(problems)} failed; "
        f"turn latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"(of which tool calls p50 {statistics.median(in_tools) * 1000:.0f} ms, "
        f"p99 {percentile(in_tools, 0.99) * 1000:.0f} ms); "
        f"web RSS {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after "
        f"({(after - before) / before:+.1%}); web CPU {cpu:.1f} s "
        f"({cpu / len(turns) * 1000:.0f} ms a turn); machine {busy / total:.0%} busy "
        f"({os.cpu_count()} cores); worker exits {exits}"
    )
    assert not problems, "\n".join(problems[:20])
    assert exits == [0] * WORKERS  # each replica drained and exited by itself
    assert len(stack.workers) == WORKERS and all(w.process.returncode is None for w in stack.workers)
    assert after <= before * (1 + MEMORY_GROWTH), f"the web server grew from {before} to {after} bytes"


async def test_a_stopping_web_server_finishes_the_turn_under_way(stack: Stack) -> None:
    """SIGTERM while a turn waits for its tool (the workers are paused: a slow agent): the web server
    stops listening and refuses new turns with a sentence, yet the running turn's reply still reaches
    its page before the server closes the socket and exits. Runs last: it stops this module's server."""
    assert stack.web is not None
    [(user, cookie)] = await login_cookies(stack, users=1)
    running, other = ChatTab(stack, cookie, user), ChatTab(stack, cookie, user)
    await asyncio.gather(running.open(), other.open())
    for worker in stack.workers:
        worker.process.send_signal(signal.SIGSTOP)
    try:
        turn = asyncio.create_task(running.say("remember that drain fact is 4711"))
        async with asyncio.timeout(TURN_TIMEOUT):
            await running.tool_started.wait()  # the call went out to the agent
        stack.web.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            while True:  # it stops listening first (a new connection each time: no keep-alive)
                try:
                    async with httpx.AsyncClient() as http:
                        await http.get(f"{stack.url}/healthz")
                except httpx.ConnectError:
                    break
                await asyncio.sleep(0.05)
        refused = await other.say("list my reminders")  # an open page's new turn: refused, said so
        assert (refused.tools, refused.started) == ({}, [])
        assert "server is stopping" in (refused.reply or ""), refused.reply
        assert not turn.done()
    finally:
        for worker in stack.workers:
            worker.process.send_signal(signal.SIGCONT)
    finished = await turn
    assert not finished.problem, finished.problem
    assert finished.tools == {"memory_remember": True}
    assert "4711" in (finished.reply or ""), finished.reply
    # uvicorn's own log (the web runs at INFO): the sockets closed, the lifespan ended, within the grace
    # After the 60 s load the lifespan's shutdown has taken up to ~20 s on this 2-core machine (py-spy saw
    # the loop still rendering a chat turn then); the bound is generous, the reply above is the point.
    await stack.web.wait_for_output("Application shutdown complete", within=GRACE + 50)
    # It exits: uvicorn re-raises the SIGTERM it got; or, should a background thread hold the stopped
    # process (seen in about 1 run of 4 after the 60 s load, before the watchdog), the watchdog exits 0.
    async with asyncio.timeout(LINGER_SECONDS + 10):
        code = await stack.web.process.wait()
    if code == 0:
        assert "exiting anyway" in stack.web.output(), stack.web.output()
        print("\nthe web server's process lingered after its shutdown; the watchdog ended it")
        code = -signal.SIGTERM
    assert code == -signal.SIGTERM, stack.web.output()  # uvicorn ends by re-raising the SIGTERM it got
